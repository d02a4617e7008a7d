"""A WSGI server on 127.0.0.1 in a daemon thread, as the local tools run them."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer


class ServerHandle:
    """A running server: ``url``, ``port``, ``stop()``; usable as a context manager."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port = int(server.server_port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_until_interrupted(self) -> None:
        """Block the standalone command until Ctrl+C, then stop cleanly."""
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
