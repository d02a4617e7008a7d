"""A moto server on 127.0.0.1 that handles one request at a time (SPEC §8, stack.md §2.3 "Fix A").

DynamoDB makes each item's conditional write atomic; moto evaluates the condition and then writes
in Python, so two threads can both win. Serializing the whole WSGI application under one lock,
including producing the response body, restores the guarantee for every client of this server.

``python -m devtools.moto_server [--port N]`` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from devtools.serving import ServerHandle, serve_in_thread

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedApp:
    """Runs the wrapped WSGI app under one lock and materializes its body before releasing it."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class MotoServerHandle(ServerHandle):
    """The running moto server: ``url``, ``port``, ``stop()``."""


def start_moto_server(port: int = 0) -> MotoServerHandle:
    """Start the serialized moto server in a daemon thread; ``port=0`` picks a free port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    return MotoServerHandle(*serve_in_thread(app, port, name="moto", request_handler=_QuietHandler))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.moto_server",
                                     description="Serialized moto server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    handle = start_moto_server(args.port)
    print(f"moto en {handle.url} (AWS_ENDPOINT_URL={handle.url}). Ctrl+C para detener.", flush=True)
    handle.serve_until_interrupted()


if __name__ == "__main__":
    main()
