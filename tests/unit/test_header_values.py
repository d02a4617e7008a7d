"""The one way a value gets into a response header (chalicelib/web/headers.py)."""

from __future__ import annotations

import pytest

from chalicelib.web import headers

HOSTILE = ["x\r\nSet-Cookie: sv_session=atacante", "x\rX: 1", "x\nX: 1", "x; Domain=atacante.example",
           "x, sv_session=atacante", "x y", 'x"', "x\x00", "x\u0085"]


def test_a_cookie_is_built_from_exactly_shaped_parts() -> None:
    assert headers.cookie("__Host-sv_session", "Ab-_.~9", secure=True, max_age=600) == (
        "__Host-sv_session=Ab-_.~9; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=600")
    assert headers.cookie("sv_ticket", "", same_site="Strict", secure=False) == (
        "sv_ticket=; Path=/; HttpOnly; SameSite=Strict")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cookie_value_with_a_separator_or_control_is_refused(value: str) -> None:
    with pytest.raises(headers.UnsafeHeader):
        headers.cookie("sv_recovery", value, secure=True)
    with pytest.raises(headers.UnsafeHeader):
        headers.cookie(value, "v", secure=True)


@pytest.mark.parametrize("options", [{"path": "/x; Domain=a"}, {"same_site": "None"}, {"max_age": -1},
                                     {"max_age": True}])
def test_cookie_attributes_are_ours_only(options: dict) -> None:
    with pytest.raises(headers.UnsafeHeader):
        headers.cookie("sv_prefs", "0.1", secure=True, **options)


@pytest.mark.parametrize("url", ["/inicio", "/api/pagos/abc?x=1&y=%20", "http://127.0.0.1:8050/banco/1",
                                 "https://registro.pse.com.co/PSENF/index.html?enc=a%2Bb"])
def test_plain_redirect_targets_pass(url: str) -> None:
    assert headers.location(url) == url


@pytest.mark.parametrize("url", ["//atacante.example", "/\\atacante.example", "javascript:alert(1)",
                                 "https://a.example/\r\nSet-Cookie: x=1", "/x\ny", "ftp://a.example", ""])
def test_other_redirect_targets_are_refused(url: str) -> None:
    with pytest.raises(headers.UnsafeHeader):
        headers.location(url)


def test_a_download_name_is_letters_digits_and_dots() -> None:
    assert headers.attachment("comprobante-SVABC.pdf") == 'attachment; filename="comprobante-SVABC.pdf"'
    for name in ('a".pdf', "a\r\n.pdf", "../a.pdf", "a;b.pdf", ""):
        with pytest.raises(headers.UnsafeHeader):
            headers.attachment(name)


def test_the_last_gate_passes_what_the_builders_make() -> None:
    headers.check({"Location": "/inicio", "Set-Cookie": [
        headers.cookie("sv_csrf", "abc", secure=True),
        headers.cookie("sv_session", "", secure=False, max_age=0)], "X-Request-Id": "abc-123"})


@pytest.mark.parametrize("response_headers", [
    {"Set-Cookie": ["sv_session=x; Path=/; Domain=atacante.example"]},
    {"Set-Cookie": "sv_session=x; Path=/; Path=/otra"},
    {"Set-Cookie": "sv_session=x; Path=/; HttpOnly=1"},
    {"Set-Cookie": "sv_session=x; SameSite=None"},
    {"Set-Cookie": "sv_session=x,y; Path=/"},
    {"Set-Cookie": "sin-igual"},
    {"Location": "/a\r\nX-Inyectado: 1"},
    {"X-Request-Id": ["ok", "mal\n"]},
    {"Mal Nombre": "x"},
])
def test_the_last_gate_refuses_what_no_builder_makes(response_headers: dict) -> None:
    with pytest.raises(headers.UnsafeHeader):
        headers.check(response_headers)
