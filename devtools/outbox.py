"""A local page listing the emails SES "sent" through moto (development only, 127.0.0.1).

Messages come from moto's SES backend: ``SendEmail`` ones (moto keeps only the HTML body, no date:
the date shown is when this page first saw them and the text is derived from the HTML) and
``SendRawEmail`` ones (MIME, parsed here: Date header, text and HTML parts, attachments). When the
moto server runs in this process (the local runner), the backend's list is read directly, in the
exact order of sending; otherwise ``GET /moto-api/data.json`` (``ses`` → ``Message`` and
``RawMessage``), where the order across the two kinds is the order this page discovered them.

Routes: ``/`` (list, newest first), ``/mensajes/<id>`` (detail), ``/mensajes/<id>/html`` (the HTML
body as sent; ``?embed=1`` makes its links open in the whole tab), ``/mensajes/<id>/adjuntos/<n>``
(an attachment), ``GET /api/messages`` (JSON, ``?to=`` filters by recipient),
``GET /api/messages/<id>``, and ``POST /api/run-schedules`` when the local runner provides it.
``python -m devtools.outbox --moto-url URL`` runs it alone.
"""

from __future__ import annotations

import argparse
import email
import html
import json
import os
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from devtools.serving import ServerHandle, serve_in_thread

DEFAULT_PORT = 8025
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _TextExtractor(HTMLParser):
    """A readable plain-text rendering of an HTML email (links shown with their address)."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "hr"})
    SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._href:
            self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        if not self._skipping:  # collapse whitespace, keeping a space at either edge
            text = " ".join(data.split())
            lead = " " if data[:1].isspace() else ""
            trail = " " if data[-1:].isspace() and text else ""
            self.parts.append(lead + text + trail)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip()


def _is_html(body: str) -> bool:
    lowered = body.lower()
    return "<html" in lowered or "</p>" in lowered or "</div>" in lowered or "<br" in lowered


def html_to_text(body: str) -> str:
    if not _is_html(body):
        return body
    parser = _TextExtractor()
    parser.feed(body)
    parser.close()
    return parser.text()


Records = Callable[[], list[dict[str, Any]]]


def in_process_records(region: str = "us-east-1") -> Records:
    """A reader of the SES backend of the moto running in this process, in sending order."""

    def read() -> list[dict[str, Any]]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses import ses_backends
        from moto.ses.models import Message, RawMessage

        records: list[dict[str, Any]] = []
        for m in list(ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages):
            if isinstance(m, RawMessage):
                records.append({"id": m.id, "source": m.source, "destinations": m.destinations,
                                "raw_data": m.raw_data})
            elif isinstance(m, Message):
                records.append({"id": m.id, "source": m.source, "destinations": m.destinations,
                                "subject": m.subject, "body": m.body})
        return records

    return read


def _parse_raw(record: dict[str, Any]) -> dict[str, Any]:
    raw = record.get("raw_data") or ""
    message = (email.message_from_bytes(raw, policy=policy.default) if isinstance(raw, bytes)
               else email.message_from_string(raw, policy=policy.default))
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    body_html = str(html_part.get_content()) if html_part is not None else ""
    attachments = []
    for part in message.iter_attachments():
        data = part.get_payload(decode=True) or b""
        attachments.append({"filename": part.get_filename() or "adjunto",
                            "content_type": part.get_content_type(), "size": len(data),
                            "data": data})
    to = record.get("destinations") or [a for _, a in getaddresses([str(message["To"] or "")])]
    date = None
    if message["Date"]:
        try:
            date = parsedate_to_datetime(str(message["Date"])).isoformat(timespec="seconds")
        except (TypeError, ValueError):
            date = None
    return {"subject": str(message["Subject"] or ""), "to": list(dict.fromkeys(to)), "date": date,
            "html": body_html,
            "text": str(text_part.get_content()) if text_part is not None
            else html_to_text(body_html),
            "attachments": attachments}


class Outbox:
    """The WSGI application."""

    def __init__(self, moto_url: str,
                 run_schedules: Callable[[], list[dict[str, Any]]] | None = None,
                 records: Records | None = None) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.run_schedules = run_schedules
        self._records = records or self._records_over_http
        self._first_seen: dict[str, tuple[int, str]] = {}  # id -> (discovery order, time)
        self._lock = threading.Lock()
        self._urls = Map([
            Rule("/", endpoint="index"),
            Rule("/mensajes/<message_id>", endpoint="detail"),
            Rule("/mensajes/<message_id>/html", endpoint="raw_html"),
            Rule("/mensajes/<message_id>/adjuntos/<int:index>", endpoint="attachment"),
            Rule("/api/messages", endpoint="api_list"),
            Rule("/api/messages/<message_id>", endpoint="api_detail"),
            Rule("/api/run-schedules", endpoint="api_run_schedules", methods=["POST"]),
        ])

    # --- data ---

    def _records_over_http(self) -> list[dict[str, Any]]:
        with _NO_PROXY.open(f"{self.moto_url}/moto-api/data.json", timeout=10) as response:
            ses = json.load(response).get("ses", {})
        return list(ses.get("Message", [])) + list(ses.get("RawMessage", []))

    def messages(self, *, with_data: bool = False) -> list[dict[str, Any]]:
        """Every message SES accepted, newest first (attachment bytes only ``with_data``)."""
        records = self._records()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            for record in records:
                self._first_seen.setdefault(str(record.get("id", "")),
                                            (len(self._first_seen), now))
            seen = dict(self._first_seen)
        out = []
        for record in records:
            message_id = str(record.get("id", ""))
            if "raw_data" in record:
                parsed = _parse_raw(record)
            else:
                body = str(record.get("body") or "")
                destinations = record.get("destinations") or {}
                parsed = {"subject": str(record.get("subject") or ""), "date": None,
                          "to": [a for key in ("ToAddresses", "CcAddresses", "BccAddresses")
                                 for a in destinations.get(key, [])],
                          "html": body if _is_html(body) else "", "text": html_to_text(body),
                          "attachments": []}
            if not with_data:
                for attachment in parsed["attachments"]:
                    attachment.pop("data", None)
            order, first_seen = seen[message_id]
            out.append({"id": message_id, "source": str(record.get("source") or ""),
                        **parsed, "date": parsed["date"] or first_seen, "_order": order})
        out.sort(key=lambda m: m.pop("_order"), reverse=True)
        return out

    def message(self, message_id: str, *, with_data: bool = False) -> dict[str, Any]:
        for message in self.messages(with_data=with_data):
            if message["id"] == message_id:
                return message
        raise NotFound("No existe ese correo en la bandeja local.")

    # --- views ---

    def index(self, request: Request) -> Response:
        rows = []
        for m in self.messages():
            rows.append(
                f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(', '.join(m['to']))}</td>"
                f"<td><a href=\"/mensajes/{html.escape(m['id'])}\">"
                f"{html.escape(m['subject'] or '(sin asunto)')}</a></td></tr>")
        table = ("<table><thead><tr><th>Fecha</th><th>Para</th><th>Asunto</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table>" if rows
                 else "<p>Todavía no se ha enviado ningún correo.</p>")
        body = (f"<p class=\"note\">Correos que SES (moto, en {html.escape(self.moto_url)}) "
                "aceptó para enviar; nada sale de este equipo. La página se actualiza sola cada "
                "10 segundos.</p>" + table)
        return self._page("Correos enviados (bandeja local)", body, refresh=True)

    def detail(self, request: Request, message_id: str) -> Response:
        m = self.message(message_id)
        quoted = html.escape(message_id)
        head = (
            "<dl>"
            f"<dt>Fecha</dt><dd>{html.escape(m['date'])}</dd>"
            f"<dt>De</dt><dd>{html.escape(m['source'])}</dd>"
            f"<dt>Para</dt><dd>{html.escape(', '.join(m['to']))}</dd>"
            f"<dt>Asunto</dt><dd>{html.escape(m['subject'])}</dd></dl>"
        )
        parts = ["<p><a href=\"/\">&larr; Volver a la bandeja</a></p>", head]
        if m["html"]:
            parts.append("<h2>Versión HTML</h2>"
                         f"<p><a href=\"/mensajes/{quoted}/html\" target=\"_blank\">"
                         "Abrir el correo en otra pestaña</a></p>"
                         f"<iframe src=\"/mensajes/{quoted}/html?embed=1\" "
                         "title=\"Contenido del correo\"></iframe>")
        if m["attachments"]:
            links = "".join(
                f"<li><a href=\"/mensajes/{quoted}/adjuntos/{i}\">{html.escape(a['filename'])}</a> "
                f"({html.escape(a['content_type'])}, {a['size']} bytes)</li>"
                for i, a in enumerate(m["attachments"]))
            parts.append(f"<h2>Adjuntos</h2><ul>{links}</ul>")
        parts.append(f"<h2>Versión de texto</h2><pre>{html.escape(m['text'])}</pre>")
        return self._page(m["subject"] or "Correo", "".join(parts))

    def raw_html(self, request: Request, message_id: str) -> Response:
        body = self.message(message_id)["html"]
        if not body:
            raise NotFound("Este correo no tiene versión HTML.")
        if request.args.get("embed"):  # links inside the frame open in the whole tab
            base = '<base target="_top">'
            lowered = body.lower()
            at = lowered.find("<head>")
            body = body[:at + 6] + base + body[at + 6:] if at >= 0 else base + body
        return Response(body, content_type="text/html; charset=utf-8")

    def attachment(self, request: Request, message_id: str, index: int) -> Response:
        attachments = self.message(message_id, with_data=True)["attachments"]
        if index >= len(attachments):
            raise NotFound("Ese correo no tiene ese adjunto.")
        item = attachments[index]
        filename = str(item["filename"]).replace('"', "")
        return Response(item["data"], content_type=item["content_type"],
                        headers={"Content-Disposition": f'inline; filename="{filename}"'})

    def api_list(self, request: Request) -> Response:
        messages = self.messages()
        to = request.args.get("to")
        if to:
            messages = [m for m in messages if to.lower() in (a.lower() for a in m["to"])]
        return _json({"messages": messages})

    def api_detail(self, request: Request, message_id: str) -> Response:
        return _json(self.message(message_id))

    def api_run_schedules(self, request: Request) -> Response:
        if self.run_schedules is None:
            return _json({"error": "no scheduled functions here"}, 404)
        return _json({"results": self.run_schedules()})

    # --- plumbing ---

    def _page(self, title: str, body: str, refresh: bool = False) -> Response:
        meta = '<meta http-equiv="refresh" content="10">' if refresh else ""
        page = f"""<!doctype html><html lang="es"><head><meta charset="utf-8">{meta}
<title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1d2b36}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #ddd;padding:.5rem;
text-align:left}} th{{background:#f2f5f7}} .note{{color:#555}}
dl{{display:grid;grid-template-columns:6rem 1fr;gap:.25rem}} dt{{font-weight:600}}
iframe{{width:100%;height:70vh;border:1px solid #ccc}} pre{{white-space:pre-wrap;background:#f7f7f7;
padding:1rem}}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"""
        return Response(page, content_type="text/html; charset=utf-8")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self._urls.bind_to_environ(environ).match()
            response = getattr(self, endpoint)(request, **args)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except OSError as exc:  # moto not reachable
            response = Response(f"No se pudo leer moto en {self.moto_url}: {exc}", status=502,
                                content_type="text/plain; charset=utf-8")
        return response(environ, start_response)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


class OutboxHandle(ServerHandle):
    """A running outbox: ``url``, ``port``, ``app``, ``stop()``."""

    def __init__(self, app: Outbox, server: BaseWSGIServer, thread: threading.Thread) -> None:
        super().__init__(server, thread)
        self.app = app


def start_outbox(moto_url: str, port: int | None = None, *,
                 run_schedules: Callable[[], list[dict[str, Any]]] | None = None,
                 records: Records | None = None) -> OutboxHandle:
    """Serve the outbox on 127.0.0.1 (``port`` None: ``OUTBOX_PORT`` or 8025; 0: a free port).

    ``records``: e.g. :func:`in_process_records` when moto runs in this process (exact order).
    """
    if port is None:
        port = int(os.environ.get("OUTBOX_PORT") or DEFAULT_PORT)
    app = Outbox(moto_url, run_schedules, records)
    return OutboxHandle(app, *serve_in_thread(app, port, name="outbox"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.outbox")
    parser.add_argument("--moto-url", default=os.environ.get("AWS_ENDPOINT_URL"), required=False)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.moto_url:
        parser.error("indique --moto-url o AWS_ENDPOINT_URL")
    handle = start_outbox(args.moto_url, args.port)
    print(f"Bandeja local en {handle.url}. Ctrl+C para detener.", flush=True)
    handle.serve_until_interrupted()


if __name__ == "__main__":
    main()
