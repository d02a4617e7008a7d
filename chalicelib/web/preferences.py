"""Display preferences in the GOV.CO style: text size ("A-", "A", "A+") and high contrast.

They work without JavaScript: the bar on every page is a small form posting here; the answer sets
a cookie and sends the browser back to the page it came from (a path of this site only). With
JavaScript, ``app.js`` posts the same form in the background (``js=1``, answered 204) and applies
the change at once, so nothing typed on the page is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalice import Response
from chalice.app import Request

from chalicelib.web import http

COOKIE = "sv_prefs"
MIN_LEVEL, MAX_LEVEL = -1, 3  # 90 %, 100 %, 115 %, 130 %, 150 % of the browser's text size
ONE_YEAR = 365 * 24 * 3600
_VALUE = re.compile(r"^(-1|[0-3])\.([01])$")
#: Pages shown as the answer to a form post: "back" is the page of that form.
_POSTED_PAGES = {"/pagos/resumen": "/obligaciones", "/pagos": "/obligaciones",
                 "/salir": "/", "/preferencias": "/", "/avisos/cancelar": "/"}
_SAFE_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9/_\-.~%?=&]*$")


@dataclass(frozen=True)
class Preferences:
    level: int = 0
    contrast: bool = False

    @property
    def css_class(self) -> str:
        names = []
        if self.level:
            names.append(f"text-{'minus-1' if self.level < 0 else self.level}")
        if self.contrast:
            names.append("contrast")
        return " ".join(names)

    @property
    def cookie_value(self) -> str:
        return f"{self.level}.{int(self.contrast)}"

    def apply(self, action: str) -> Preferences:
        if action == "mas":
            return Preferences(min(MAX_LEVEL, self.level + 1), self.contrast)
        if action == "menos":
            return Preferences(max(MIN_LEVEL, self.level - 1), self.contrast)
        if action == "normal":
            return Preferences(0, self.contrast)
        if action == "contraste":
            return Preferences(self.level, not self.contrast)
        return self


def read(cookies: dict[str, str], cookie_name: str) -> Preferences:
    match = _VALUE.match(cookies.get(cookie_name, ""))
    if not match:
        return Preferences()
    return Preferences(int(match.group(1)), match.group(2) == "1")


def return_path(request: Request) -> str:
    """Where the bar's form comes back to: this page, or for a posted page, the page of its form."""
    path = request.path
    for name, value in (request.uri_params or {}).items():
        path = path.replace("{" + name + "}", str(value))
    if request.method != "GET":
        return _POSTED_PAGES.get(path, path)
    query = dict(request.query_params or {})
    if query:
        from urllib.parse import urlencode

        path += "?" + urlencode(query)
    return path


def safe_return(raw: str) -> str:
    """A path on this site (never ``//host`` nor a scheme), else the home page."""
    if len(raw) > 1024 or not _SAFE_PATH.match(raw):
        return "/"
    return raw


def save(request: Request) -> Response:
    from chalicelib.web.pages import Page

    page = Page(request)
    try:
        fields = http.form_fields(request)
    except Exception:
        fields = {}
    back = safe_return(fields.get("volver", "/"))
    if http.same_origin(request, page.settings):  # a cross-site post changes nothing
        current = read(page.cookies, page.cookie_name(COOKIE))
        wanted = _VALUE.match(f"{fields.get('nivel', '')}.{fields.get('alto', '')}")
        # The script sends the state it shows (clicks in a row never drift); a form, a step.
        chosen = (Preferences(int(wanted.group(1)), wanted.group(2) == "1") if wanted
                  else current.apply(fields.get("accion", "")))
        page.set_cookie(COOKIE, chosen.cookie_value, max_age=ONE_YEAR)
    if fields.get("js") == "1":
        return Response(body="", status_code=204, headers=page.cookie_headers())
    return page.redirect(back)
