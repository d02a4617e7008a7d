"""The local tools' HTTP servers: 127.0.0.1, a thread per connection, a deep listen backlog."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

#: Connections the kernel queues before a server accepts them. ``socketserver`` listens with 5,
#: so a burst of 30 clients (a payday peak, ``make load``) overflowed it and connections hung or
#: were reset; Linux caps the value at ``net.core.somaxconn`` (4096 by default).
LISTEN_BACKLOG = 1024


class LocalWSGIServer(ThreadedWSGIServer):
    """Werkzeug's threaded server (a daemon thread per connection) with :data:`LISTEN_BACKLOG`."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """No access log line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve_in_thread(app: Any, port: int, *, name: str,
                    request_handler: type[WSGIRequestHandler] = QuietHandler,
                    poll_interval: float = 0.5) -> tuple[LocalWSGIServer, threading.Thread]:
    """Serve ``app`` on 127.0.0.1:``port`` (0: a free port) in a started daemon thread."""
    server = LocalWSGIServer("127.0.0.1", port, app, request_handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval},
                              name=f"{name}-{server.server_port}", daemon=True)
    thread.start()
    return server, thread


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
