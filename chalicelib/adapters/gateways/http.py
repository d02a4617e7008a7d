"""JSON over HTTPS for the gateway adapters: one request, no retries, no redirects, errors mapped
onto the port's (urllib3, imported lazily).

What a late or dropped answer means is the caller's to say (``late``): only a request that may
have created something at the gateway leaves the outcome unknown (:class:`GatewayTimeout`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.adapters.gateways.base import GatewayError, GatewayTimeout
from chalicelib.security import bounded_json

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 4 * 1024 * 1024


class JsonHttp:
    """``http`` is anything with urllib3's ``request(method, url, body=, headers=, timeout=,
    retries=, redirect=)`` returning an object with ``status`` and ``data``; by default a
    ``urllib3.PoolManager`` created on first use. ``detail`` turns a decoded error answer into a
    short loggable text (never a secret)."""

    def __init__(self, label: str, *, http: Any = None, timeout_seconds: float = 10,
                 detail: Callable[[Any], str] = lambda _: "") -> None:
        self._label = label
        self._http = http
        self._timeout_seconds = timeout_seconds
        self._detail = detail
        self._lock = threading.Lock()

    def _pool(self) -> Any:
        if self._http is None:
            import urllib3  # lazy: off the cold-start path

            with self._lock:
                if self._http is None:
                    self._http = urllib3.PoolManager(num_pools=2, maxsize=4)
        return self._http

    def call(self, method: str, url: str, path: str, *, failure: str, late: str,
             headers: Mapping[str, str], payload: Mapping[str, Any] | None = None
             ) -> dict[str, Any]:
        """One request; the decoded JSON object of a 2xx answer, else GatewayError/GatewayTimeout
        (``path`` is what the log shows: never a query string with a key in it)."""
        import urllib3  # lazy; already imported by then when the default pool is used
        from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout

        label = self._label
        sent = {"Accept": "application/json", **headers}
        body = None
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            sent["Content-Type"] = "application/json"
        timeout = urllib3.Timeout(connect=self._timeout_seconds, read=self._timeout_seconds)
        started = time.monotonic()
        try:
            response = self._pool().request(method, url, body=body, headers=sent,
                                            timeout=timeout, retries=False, redirect=False)
        except NewConnectionError as exc:  # refused / DNS: the request never left
            # (before TimeoutError: urllib3 makes NewConnectionError a ConnectTimeoutError)
            log.error("%s %s %s: cannot connect (%s)", label, method, path, type(exc).__name__)
            raise GatewayError(failure, code="gateway_unavailable") from exc
        except Urllib3Timeout as exc:
            log.warning("%s %s %s timed out after %.1fs", label, method, path,
                        time.monotonic() - started)
            raise GatewayTimeout(late, code="gateway_timeout") from exc
        except ProtocolError as exc:  # dropped mid-way: the outcome is unknown
            log.warning("%s %s %s: connection dropped (%s)", label, method, path, exc)
            raise GatewayTimeout(late, code="gateway_timeout") from exc
        except HTTPError as exc:
            log.error("%s %s %s failed: %s", label, method, path, type(exc).__name__)
            raise GatewayError(failure, code="gateway_unavailable") from exc
        status = int(response.status)
        log.info("%s %s %s -> %s in %.0f ms", label, method, path, status,
                 (time.monotonic() - started) * 1000)
        decoded: Any = None
        try:
            decoded = (bounded_json.loads(response.data, max_bytes=MAX_ANSWER_BYTES)
                       if response.data else None)
        except ValueError:  # not JSON, not UTF-8, too large or too deep
            decoded = None
        if 200 <= status < 300:
            if not isinstance(decoded, dict):
                log.error("%s %s %s: answer is not a JSON object", label, method, path)
                raise GatewayError(failure, code="gateway_malformed")
            return decoded
        detail = (self._detail(decoded) or "(no error body)")[:500]
        if status == 404:
            log.warning("%s %s %s: not found %s", label, method, path, detail)
            raise GatewayError(failure, code="not_found")
        if status in (401, 403):
            log.error("%s %s %s: credentials refused (check the keys) %s", label, method, path,
                      detail)
            raise GatewayError(failure, code="gateway_auth")
        if 400 <= status < 500:
            log.error("%s %s %s: request refused %s %s", label, method, path, status, detail)
            raise GatewayError(failure, code="invalid_request")
        log.error("%s %s %s: gateway error %s %s", label, method, path, status, detail)
        raise GatewayError(failure, code="gateway_server_error")
