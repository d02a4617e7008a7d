"""``chalice local`` with Nagle's algorithm off (what ``make run`` and the tests start).

Chalice's request handler keeps ``http.server``'s default, Nagle on: on a kept-alive connection it
writes a response's headers and body separately, and the body waits for the client's delayed ACK,
about 40 ms per request (browsers and ``requests.Session`` reuse connections). Off, ~2 ms.
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

from devtools import clock

local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    clock.apply_from_environment()  # the tests' moved clock, handed down by the runner
    sys.exit(main())
