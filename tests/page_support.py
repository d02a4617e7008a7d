"""A tiny form-walking browser over chalice's test client (the `browser` fixture)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """A tiny cookie jar over chalice's test client, enough to walk the forms."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.jar: dict[str, str] = {}

    def _remember(self, response) -> None:  # type: ignore[no-untyped-def]
        headers = response.headers.get("Set-Cookie") or []
        for header in [headers] if isinstance(headers, str) else headers:
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in header:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def _cookie(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if self.jar else {}

    def get(self, path: str):  # type: ignore[no-untyped-def]
        response = self.client.http.get(path, headers=self._cookie())
        self._remember(response)
        return response

    def post(self, path: str, fields: dict[str, str], csrf_from: str | None = None):  # type: ignore[no-untyped-def]
        if csrf_from is not None:
            page = self.get(csrf_from).body.decode()
            fields = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), **fields}
        response = self.client.http.post(path, headers={**FORM, **self._cookie()}, body=urlencode(fields))
        self._remember(response)
        return response


@pytest.fixture
def browser(client) -> Browser:  # type: ignore[no-untyped-def]
    return Browser(client)
