"""``chalice local`` as ``make run`` and the tests start it: Nagle off, a deep listen backlog.

Chalice's request handler keeps ``http.server``'s default, Nagle on: on a kept-alive connection it
writes a response's headers and body separately, and the body waits for the client's delayed ACK,
about 40 ms per request (browsers and ``requests.Session`` reuse connections). Off, ~2 ms.

Its server (``ThreadingMixIn``: a daemon thread per connection) listens with ``socketserver``'s
backlog of 5, which a burst of 30 clients overflows; it gets the local tools' backlog instead.
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

from devtools import clock
from devtools.serving import LISTEN_BACKLOG

local.ChaliceRequestHandler.disable_nagle_algorithm = True
local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG

if __name__ == "__main__":
    clock.apply_from_environment()  # the tests' moved clock, handed down by the runner
    sys.exit(main())
