"""The sandbox's JSON and HTML answers (both protocols)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response


def json_response(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


def html_response(status: int, page: str) -> Response:
    response = Response(page, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
    response.headers["Cache-Control"] = "no-store"
    return response
