"""The few static files (CSS, JS) and the OpenAPI document, read from the package once."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from chalice import Response

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".svg": "image/svg+xml"}


@lru_cache(maxsize=16)
def _read(package_path: str) -> str | None:
    file = resources.files("chalicelib").joinpath(package_path)
    return file.read_text("utf-8") if file.is_file() else None


def serve(name: str) -> Response:
    suffix = name[name.rfind("."):] if "." in name else ""
    body = _read(f"static/{name}") if suffix in _TYPES and "/" not in name and ".." not in name else None
    if body is None:
        return Response(body="No encontrado", status_code=404,
                        headers={"Content-Type": "text/plain; charset=utf-8"})
    return Response(body=body, headers={"Content-Type": _TYPES[suffix],
                                        "Cache-Control": "public, max-age=3600"})


def openapi() -> Response:
    return Response(body=_read("openapi.json") or "{}",
                    headers={"Content-Type": "application/json; charset=utf-8"})
