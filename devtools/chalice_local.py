"""``chalice local`` as ``make run`` and the tests start it: Nagle off, a deep listen backlog.

Chalice's request handler keeps ``http.server``'s default, Nagle on: on a kept-alive connection it
writes a response's headers and body separately, and the body waits for the client's delayed ACK,
about 40 ms per request (browsers and ``requests.Session`` reuse connections). Off, ~2 ms.

Its server (``ThreadingMixIn``: a daemon thread per connection) listens with ``socketserver``'s
backlog of 5, which a burst of 30 clients overflows; it gets the local tools' backlog instead.

An unknown path gets what the deployed API answers (its gateway response, ``devtools/infra/api.py``):
404 with the Spanish ``not_found`` error and the security headers, not chalice's English 403
"Missing Authentication Token".
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

from devtools import clock
from devtools.infra.api import GATEWAY_RESPONSE_HEADERS, NOT_FOUND_BODY
from devtools.serving import LISTEN_BACKLOG

MISSING_TOKEN = b'{"message": "Missing Authentication Token"}'
chalice_error_response = local.ChaliceRequestHandler._send_error_response


def gateway_error_response(handler: local.ChaliceRequestHandler, error: local.LocalGatewayException) -> None:
    if not (isinstance(error, local.ForbiddenError) and error.body == MISSING_TOKEN):
        chalice_error_response(handler, error)
        return
    headers = {name: value.strip("'") for name, value in GATEWAY_RESPONSE_HEADERS.items()
               if value.startswith("'")}  # the static ones; the request id is the context's
    headers["X-Request-Id"] = str(error.headers.get("x-amzn-RequestId", ""))
    headers["Content-Type"] = "application/json; charset=utf-8"
    handler._send_http_response(404, headers, NOT_FOUND_BODY.encode("utf-8"))


local.ChaliceRequestHandler.disable_nagle_algorithm = True
local.ChaliceRequestHandler._send_error_response = gateway_error_response  # type: ignore[method-assign]
local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG

if __name__ == "__main__":
    clock.apply_from_environment()  # the tests' moved clock, handed down by the runner
    sys.exit(main())
