"""``python -m devtools.run_local`` (``make run``): the whole system on this machine (SPEC §5).

In order: fake AWS credentials and the local stage's environment (``.chalice/config.json``); a
serialized moto server unless ``AWS_ENDPOINT_URL`` points at one; the DynamoDB tables; the SES
sender identity; the demo members and obligations (``DEMO_DATA_DIR``, default ``devtools/demo``);
the PSE sandbox (when ``devtools.pse_sandbox`` exists; it speaks Wompi's and PlacetoPay's
protocols, and ``GATEWAY=placetopay make run`` makes the app pay through the latter, Wompi being
the default); the email outbox page; ``chalice local`` as a subprocess; every
``POLL_INTERVAL_SECONDS`` (60), the ``@app.schedule`` functions, which ``chalice local`` never
runs; and every second, the events table's stream to the ``@app.on_dynamodb_record`` handler (the
receipts), as Lambda reads it in AWS. Ctrl+C or SIGTERM stops everything.

Ports: ``PORT`` (8000, the app), ``OUTBOX_PORT`` (8025), ``SANDBOX_PORT`` (8050), ``MOTO_PORT``
(0: a free one). ``chalicelib`` is imported only once the environment is set: its settings, and
the tables the models are bound to, come from it.

Browser tests use :func:`start_stack`, which runs this same runner in a child process (so the
test process keeps its own in-process moto) and returns a :class:`StackHandle`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from devtools import clock, demo_dates

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEMO_DIR = ROOT / "devtools" / "demo"
ARTIFACTS = ROOT / "test-artifacts"
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StartupError(RuntimeError):
    """Part of the stack could not start (the message says which and why)."""


def _say(message: str) -> None:
    print(f"[run_local] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def local_stage_env() -> dict[str, str]:
    """The variables ``chalice local --stage local`` applies (it overrides the process's own)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text("utf-8"))
    return {**config.get("environment_variables", {}),
            **config.get("stages", {}).get("local", {}).get("environment_variables", {})}


def apply_environment(app_port: int, overrides: dict[str, str] | None = None) -> None:
    """Set this process's environment (children inherit it): stage values, credentials, URLs."""
    os.environ.update(local_stage_env())
    os.environ.update(FAKE_CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    no_proxy = [h for h in os.environ.get("NO_PROXY", "").split(",") if h]
    for host in ("127.0.0.1", "localhost"):
        if host not in no_proxy:
            no_proxy.append(host)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(no_proxy)
    os.environ["PUBLIC_BASE_URL"] = f"http://localhost:{app_port}"
    os.environ.update(overrides or {})


# --- scheduled functions -----------------------------------------------------------------------

def cloudwatch_event(rule: str) -> dict[str, Any]:
    """What EventBridge sends a scheduled Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_DEFAULT_REGION", REGION),
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{rule}"],
        "detail": {},
    }


def find_scheduled_handlers(app_module: str = "app") -> list[tuple[str, Callable[..., Any]]]:
    """Every ``@app.schedule`` handler of the Chalice app, as ``(name, handler)``."""
    from chalice.app import ScheduledEventConfig

    module = importlib.import_module(app_module)
    chalice_app = module.app
    handlers = []
    for source in getattr(chalice_app, "event_sources", []):
        if isinstance(source, ScheduledEventConfig):
            module_name, _, attr = source.handler_string.rpartition(".")
            handler = getattr(importlib.import_module(module_name or app_module), attr)
            handlers.append((source.name, handler))
    return handlers


class SchedulePoller:
    """Invokes the scheduled handlers in this process every ``interval`` seconds; never dies."""

    def __init__(self, interval: float, app_module: str = "app") -> None:
        self.interval = interval
        self.app_module = app_module
        self.handlers: list[tuple[str, Callable[..., Any]]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule-poller", daemon=True)

    def load(self) -> list[str]:
        try:
            self.handlers = find_scheduled_handlers(self.app_module)
        except Exception as exc:
            _say(f"no se pudieron cargar las funciones programadas de app.py: {exc!r}")
            self.handlers = []
        return [name for name, _ in self.handlers]

    def run_once(self) -> list[dict[str, Any]]:
        """Run every scheduled handler once; report each outcome."""
        if self.handlers is None:
            self.load()
        results = []
        with self._lock:
            for name, handler in self.handlers or []:
                started = time.monotonic()
                try:
                    output = handler(cloudwatch_event(name), None)
                    results.append({"name": name, "ok": True, "result": _jsonable(output),
                                    "seconds": round(time.monotonic() - started, 3)})
                except Exception as exc:
                    _say(f"la función programada {name} falló: {exc!r}")
                    traceback.print_exc()
                    results.append({"name": name, "ok": False, "error": repr(exc)})
        return results

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                traceback.print_exc()


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


# --- the events table's stream: what Lambda's event source mapping does in AWS ------------------

STREAM_SECONDS = 1.0  # how often the events table's stream is read (Lambda polls it ~4 times a second)


def find_stream_handler(app_module: str = "app") -> tuple[Callable[..., Any], int] | None:
    """The ``@app.on_dynamodb_record`` handler of the Chalice app (the events table's stream) and
    its batch size."""
    from chalice.app import DynamoDBEventConfig

    module = importlib.import_module(app_module)
    for source in getattr(module.app, "event_sources", []):
        if isinstance(source, DynamoDBEventConfig):
            module_name, _, attr = source.handler_string.rpartition(".")
            handler = getattr(importlib.import_module(module_name or app_module), attr)
            return handler, source.batch_size
    return None


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda hands it to the function: with its stream's ARN, the
    creation time in epoch seconds (boto3 parsed it into a datetime)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


class StreamReader:
    """Delivers a DynamoDB Stream's records to a Lambda handler in batches, from the oldest, as the
    event source mapping of the packaged template does: a record the handler reports failed
    (``batchItemFailures``) or a batch it raised on is delivered again from there, up to
    ``max_retries`` more times; then it is logged and passed (in AWS: the failure destination)."""

    def __init__(self, table_name: str, handler: Callable[..., Any], *, batch_size: int,
                 max_retries: int, region: str = REGION) -> None:
        import boto3
        from botocore.config import Config

        self.table_name = table_name
        self.handler = handler
        self.batch_size = batch_size
        self.max_retries = max_retries
        self._dynamodb = boto3.client("dynamodb", region_name=region)
        # Account-based endpoints ({account}.streams-ddb...) are unknown to moto in process.
        self._streams = boto3.client("dynamodbstreams", region_name=region,
                                     config=Config(account_id_endpoint_mode="disabled"))
        self._stream_arn: str | None = None
        self._delivered: dict[str, str] = {}  # shard id -> last sequence number done with
        self._attempts: dict[str, int] = {}  # sequence number -> failed deliveries

    def run_once(self) -> int:
        """Deliver every record not delivered yet; return how many are done with (handled, or
        passed after their last retry)."""
        if self._stream_arn is None:  # the table's stream does not change while the runner runs
            self._stream_arn = self._dynamodb.describe_table(TableName=self.table_name)["Table"].get(
                "LatestStreamArn")
        stream_arn = self._stream_arn
        if not stream_arn:
            return 0
        handled = 0
        description = self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            handled += self._read_shard(stream_arn, shard["ShardId"])
        return handled

    def _read_shard(self, stream_arn: str, shard_id: str) -> int:
        after = self._delivered.get(shard_id)
        position: dict[str, str] = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                                    if after else {"ShardIteratorType": "TRIM_HORIZON"})
        iterator = self._streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id,
                                                    **position)["ShardIterator"]
        handled = 0
        while iterator:
            page = self._streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            records = page.get("Records", [])
            if not records:
                break
            done = self._deliver(stream_arn, shard_id, records)
            handled += done
            if done < len(records):  # read again from the failed record next time
                break
            iterator = page.get("NextShardIterator")
        return handled

    def _deliver(self, stream_arn: str, shard_id: str, records: list[dict[str, Any]]) -> int:
        """One batch to the handler; how many records, from the first, are done with."""
        sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
        try:
            answer = self.handler({"Records": [lambda_record(r, stream_arn) for r in records]}, None)
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        except Exception as exc:
            _say(f"el manejador de eventos falló con el lote: {exc!r}")
            failed = set(sequences)
        shard_done = len(records)
        for index, sequence in enumerate(sequences):
            if sequence not in failed:
                continue
            self._attempts[sequence] = self._attempts.get(sequence, 0) + 1
            if self._attempts[sequence] <= self.max_retries:
                shard_done = index
                break
            _say(f"evento {sequence} descartado tras {self._attempts[sequence]} intentos fallidos")
        if shard_done:
            self._delivered[shard_id] = sequences[shard_done - 1]
        return shard_done


# --- the stack, in this process ------------------------------------------------------------------

@dataclass
class DemoMember:
    document_number: str
    full_name: str
    status: str


@dataclass
class LocalStack:
    """Everything ``run_stack`` started in this process; ``stop()`` ends it in reverse order."""

    app_url: str = ""
    outbox_url: str = ""
    sandbox_url: str | None = None
    moto_url: str = ""
    process: subprocess.Popen[bytes] | None = None
    members: list[DemoMember] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    poller: SchedulePoller | None = None
    staff_password: str = ""
    _stoppers: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def stop(self) -> None:
        while self._stoppers:
            name, stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:
                _say(f"error al detener {name}: {exc!r}")


def _chalice_command(port: int) -> list[str]:
    return [sys.executable, "-m", "devtools.chalice_local", "local", "--stage", "local",
            "--host", "127.0.0.1", "--port", str(port), "--no-autoreload"]


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"chalice local terminó con código {process.returncode} antes de "
                               "responder (¿app.py tiene un error?)")
        try:
            with _NO_PROXY.open(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers; any status will do
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise StartupError(f"chalice local no respondió en {url} tras {timeout:.0f} s")


def _read_demo_members(path: Path) -> list[DemoMember]:
    text = path.read_text("utf-8-sig")
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    members = []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if row.get("document_number"):
            members.append(DemoMember(row["document_number"], row.get("full_name", ""),
                                      row.get("status", "").upper()))
    return members


def _verify_sender() -> None:
    import boto3

    address = parseaddr(os.environ.get("MAIL_SENDER", ""))[1]
    if "@" not in address:
        raise StartupError(f"MAIL_SENDER no contiene una dirección: {os.environ.get('MAIL_SENDER')!r}")
    ses = boto3.client("ses", region_name=os.environ.get("AWS_DEFAULT_REGION", REGION))
    ses.verify_email_identity(EmailAddress=address)
    ses.verify_domain_identity(Domain=address.rpartition("@")[2])


def _load_demo(demo_dir: Path) -> list[DemoMember]:
    from chalicelib.services.imports import import_members, import_obligations

    now = datetime.now(UTC)
    for name, run in (("members.csv", import_members), ("obligations.csv", import_obligations)):
        path = demo_dir / name
        if not path.exists():
            _say(f"no existe {path}; no se cargan datos de demostración de ese tipo")
            continue
        # Placeholders such as {today-8} become dates of today; dated files load as they are.
        text = demo_dates.resolve(path.read_text("utf-8-sig"), now)
        report = run(io.BytesIO(text.encode("utf-8")), now=now)
        if report.ok and not report.warnings:
            _say(f"{name}: {report.rows} filas ({report.inserted} nuevas, {report.updated} "
                 f"actualizadas, {report.unchanged} sin cambios)")
        else:
            print(report.to_text(), flush=True)
    members_csv = demo_dir / "members.csv"
    return _read_demo_members(members_csv) if members_csv.exists() else []


DROP_FOLDER_SECONDS = 2.0  # how often the local drop folder is looked at (EventBridge is immediate)


def _start_staff_console(stack: LocalStack) -> str:
    """The staff user pool and its demo users, the upload bucket, the drop folder's watcher."""
    import boto3

    from devtools.drop_folder import DropFolderWatcher
    from devtools.staff_pool import MOTO_TOTP_ENV, create_demo_staff, create_pool

    region = os.environ.get("AWS_DEFAULT_REGION", REGION)
    os.environ.update(MOTO_TOTP_ENV)  # the in-process moto then checks TOTP codes (README)
    pool_id, client_id = create_pool(region)
    os.environ["STAFF_USER_POOL_ID"], os.environ["STAFF_CLIENT_ID"] = pool_id, client_id
    password = create_demo_staff(region, pool_id)
    bucket = os.environ.get("IMPORT_BUCKET") or f"{os.environ.get('TABLE_PREFIX', 'sv-local')}-files"
    s3 = boto3.client("s3", region_name=region)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    watcher = DropFolderWatcher(bucket)
    runner = SchedulePoller(DROP_FOLDER_SECONDS)
    runner.handlers = [("drop_folder", lambda event, context: watcher.run_once())]
    runner.start()
    stack._stoppers.append(("drop folder", runner.stop))
    return password


def _start_event_stream(stack: LocalStack) -> None:
    """The events table's stream to the app's handler every STREAM_SECONDS (Lambda's part in AWS):
    receipts go out after the commit here too."""
    from chalicelib.adapters.dynamo.models import OutboxEvent

    found = find_stream_handler()
    if found is None:
        _say("app.py no tiene manejador del stream de eventos: no se envían comprobantes")
        return
    handler, batch_size = found
    max_retries = int(importlib.import_module("app").EVENTS_MAX_RETRIES)
    reader = StreamReader(OutboxEvent.Meta.table_name, handler, batch_size=batch_size,
                          max_retries=max_retries, region=os.environ.get("AWS_DEFAULT_REGION", REGION))
    runner = SchedulePoller(STREAM_SECONDS)
    runner.handlers = [("events_stream", lambda event, context: reader.run_once())]
    runner.start()
    stack._stoppers.append(("events stream", runner.stop))


def run_stack(port: int = 8000, *, outbox_port: int = 8025, sandbox_port: int = 8050,
              moto_port: int = 0, demo_dir: Path | None = None,
              env_overrides: dict[str, str] | None = None, chalice_output: Any = None,
              poll_interval: float | None = None, http_timeout: float = 60.0) -> LocalStack:
    """Start the whole stack in this process (and ``chalice local`` as a child); see the module.

    ``port=0`` picks a free port. ``chalice_output``: None inherits stdout/stderr, else a file.
    Note that ``chalice local`` re-applies ``.chalice/config.json``'s values over the environment,
    so overriding those keys only affects this process.
    """
    port = port or free_port()
    if not _port_is_free(port):
        raise StartupError(f"el puerto {port} está ocupado; use PORT=<otro puerto>")
    apply_environment(port, env_overrides)
    stack = LocalStack(app_url=f"http://localhost:{port}")
    try:
        _start(stack, port, outbox_port, sandbox_port, moto_port, demo_dir, chalice_output,
               poll_interval, http_timeout, env_overrides or {})
    except BaseException:
        stack.stop()
        raise
    return stack


def _start(stack: LocalStack, port: int, outbox_port: int, sandbox_port: int, moto_port: int,
           demo_dir: Path | None, chalice_output: Any, poll_interval: float | None,
           http_timeout: float, overrides: dict[str, str]) -> None:
    in_process_moto = not os.environ.get("AWS_ENDPOINT_URL")
    if not in_process_moto:
        stack.moto_url = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
        _say(f"uso el moto de AWS_ENDPOINT_URL={stack.moto_url}")
    else:
        from devtools.moto_server import start_moto_server

        moto = start_moto_server(moto_port)
        stack._stoppers.append(("moto", moto.stop))
        stack.moto_url = moto.url
        os.environ["AWS_ENDPOINT_URL"] = moto.url

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.adapters.dynamo.tables import create_all_tables  # only now: env is set
    from chalicelib.config import get_settings

    created = create_all_tables(get_settings())
    if created:
        _say(f"tablas creadas: {', '.join(created)}")
    _verify_sender()
    stack.staff_password = _start_staff_console(stack)
    demo = Path(demo_dir or os.environ.get("DEMO_DATA_DIR") or DEFAULT_DEMO_DIR)
    stack.members = _load_demo(demo)

    if importlib.util.find_spec("devtools.pse_sandbox") is not None:
        sandbox_module = importlib.import_module("devtools.pse_sandbox")
        options = {key: os.environ[env] for key, env in (
            ("public_key", "GATEWAY_PUBLIC_KEY"), ("private_key", "GATEWAY_PRIVATE_KEY"),
            ("events_secret", "GATEWAY_EVENTS_SECRET"),
            ("integrity_secret", "GATEWAY_INTEGRITY_SECRET"),
            ("placetopay_login", "PLACETOPAY_LOGIN"),
            ("placetopay_secret_key", "PLACETOPAY_SECRET_KEY")) if os.environ.get(env)}
        sandbox = sandbox_module.start_sandbox(
            port=sandbox_port, events_url=f"http://127.0.0.1:{port}/webhooks/pse", **options)
        stack._stoppers.append(("sandbox", sandbox.stop))
        stack.sandbox_url = sandbox.url
        # The sandbox speaks both protocols at once: GATEWAY (wompi unless the environment says
        # placetopay) picks the one new payments use, and the other's in-flight ones still finish.
        for name, url in (("GATEWAY_BASE_URL", f"{sandbox.url}/v1"),
                          ("PLACETOPAY_BASE_URL", sandbox.url)):
            if name not in overrides:
                os.environ[name] = url

    interval = poll_interval if poll_interval is not None else float(
        os.environ.get("POLL_INTERVAL_SECONDS") or 60)
    stack.poller = SchedulePoller(interval)

    from devtools.outbox import in_process_records, start_outbox

    records = in_process_records(os.environ.get("AWS_DEFAULT_REGION", REGION)) \
        if in_process_moto else None
    outbox = start_outbox(stack.moto_url, outbox_port, run_schedules=stack.poller.run_once,
                          records=records)
    stack._stoppers.append(("outbox", outbox.stop))
    stack.outbox_url = outbox.url

    # Our own interpreter and fixed arguments, no shell.
    process = subprocess.Popen(  # noqa: S603  # nosec B603
        _chalice_command(port), cwd=str(ROOT), env=dict(os.environ), stdout=chalice_output,
        stderr=chalice_output, stdin=subprocess.DEVNULL, start_new_session=True)
    stack.process = process
    stack._stoppers.append(("chalice local", lambda: _terminate(process)))
    _wait_for_http(f"http://127.0.0.1:{port}/", process, http_timeout)

    stack.schedules = stack.poller.load()
    stack.poller.start()
    stack._stoppers.append(("poller", stack.poller.stop))
    _start_event_stream(stack)


def banner(stack: LocalStack) -> str:
    width = max((len(m.full_name) for m in stack.members), default=20)
    people = [f"    {m.document_number:>12}  {m.full_name:<{width}}  {m.status}"
              for m in stack.members] or ["    (no se cargaron asociados de demostración)"]
    interval = stack.poller.interval if stack.poller else 0
    schedules = ", ".join(stack.schedules) if stack.schedules else "ninguna todavía"
    every = f"cada {interval:g} s" if interval > 0 else "solo a pedido: POST /api/run-schedules"
    lines = [
        "",
        "=" * 78,
        "  Sucursal Virtual — entorno local",
        "=" * 78,
        f"  Aplicación:           {stack.app_url}",
        f"  Correos (bandeja):    {stack.outbox_url}",
        f"  Sandbox PSE:          {stack.sandbox_url or 'no disponible (falta devtools.pse_sandbox)'}"
        f" (pasarela: {os.environ.get('GATEWAY') or 'wompi'})",
        f"  moto (AWS local):     {stack.moto_url}",
        f"  Funciones programadas: {schedules} ({every})",
        "",
        "  Asociados de demostración (usuario = número de documento):",
        *people,
        "",
        f"  Consola del personal:  {stack.app_url}/backoffice/ingresar",
        "    usuarios consulta, tesoreria y administrador; contraseña temporal "
        f"{stack.staff_password}",
        "    (DEMO_STAFF_PASSWORD la cambia). El primer ingreso pide una nueva y el autenticador;",
        "    este moto acepta los códigos de la clave que muestra la página (README).",
        "",
        "  Primer acceso: use «¿Olvidó su contraseña?» con un documento ACTIVO y lea el",
        f"  correo en la bandeja local ({stack.outbox_url}).",
        "",
        f"  Importar otro archivo: AWS_ENDPOINT_URL={stack.moto_url} \\",
        "    python -m devtools.import_cli members|obligations ARCHIVO.csv",
        "    (o s3://BUCKET/imports/obligations.csv: la carpeta de S3, como en AWS; README)",
        "  Ctrl+C detiene todo.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


# --- CLI ---------------------------------------------------------------------------------------

def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m devtools.run_local",
                                     description="Ejecuta la Sucursal Virtual localmente.")
    parser.add_argument("--port", type=int, default=int(env.get("PORT") or 8000))
    parser.add_argument("--outbox-port", type=int, default=int(env.get("OUTBOX_PORT") or 8025))
    parser.add_argument("--sandbox-port", type=int, default=int(env.get("SANDBOX_PORT") or 8050))
    parser.add_argument("--moto-port", type=int, default=int(env.get("MOTO_PORT") or 0))
    parser.add_argument("--demo-dir", type=Path, default=None)
    parser.add_argument("--poll-interval", type=float, default=None)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="override an environment variable after the stage's values")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="(start_stack) write the URLs here as JSON once everything answers")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        moved = clock.apply_from_environment()
    except clock.ClockError as exc:
        _say(f"no se pudo iniciar: {exc}")
        return 1
    if moved is not None:
        _say(f"reloj de prueba: {datetime.now(UTC).isoformat(timespec='seconds')} "
             f"({clock.OFFSET_ENV}={moved:.0f} s)")
    stopping = threading.Event()
    started = False

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        if not started:  # interrupt the start-up itself; run_stack cleans up what it started
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    overrides = dict(item.split("=", 1) for item in args.env)
    parent = os.getppid()
    try:
        stack = run_stack(args.port, outbox_port=args.outbox_port,
                          sandbox_port=args.sandbox_port, moto_port=args.moto_port,
                          demo_dir=args.demo_dir, env_overrides=overrides,
                          poll_interval=args.poll_interval)
    except KeyboardInterrupt:
        _say("interrumpido durante el arranque")
        return 0
    except (StartupError, OSError) as exc:  # OSError: a port in use, most often
        _say(f"no se pudo iniciar: {exc}")
        return 1
    started = True
    if stopping.is_set():
        stack.stop()
        return 0
    print(banner(stack), flush=True)
    if args.ready_file:
        info = {"app_url": stack.app_url, "outbox_url": stack.outbox_url,
                "sandbox_url": stack.sandbox_url, "moto_url": stack.moto_url,
                "chalice_pid": stack.process.pid if stack.process else None,
                "schedules": stack.schedules,
                "members": [m.__dict__ for m in stack.members],
                "staff_password": stack.staff_password}
        partial = args.ready_file.with_suffix(".tmp")
        partial.write_text(json.dumps(info), "utf-8")
        partial.replace(args.ready_file)
    code = 0
    while not stopping.wait(1.0):
        if stack.process is not None and stack.process.poll() is not None:
            _say(f"chalice local terminó inesperadamente (código {stack.process.returncode})")
            code = 1
            break
        if args.ready_file and os.getppid() != parent:  # the test process died: do not linger
            break
    _say("deteniendo...")
    stack.stop()
    return code


# --- programmatic API for tests ----------------------------------------------------------------

@dataclass
class StackHandle:
    """A runner started by :func:`start_stack` in a child process."""

    app_url: str
    outbox_url: str
    sandbox_url: str | None
    moto_url: str
    log_path: Path
    members: list[dict[str, str]]
    schedules: list[str]
    process: subprocess.Popen[bytes]
    chalice_pid: int | None

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def run_schedules(self) -> list[dict[str, Any]]:
        """Run the ``@app.schedule`` functions now (as the poller would); their outcomes."""
        # The outbox this handle started on 127.0.0.1, over http.
        request = urllib.request.Request(f"{self.outbox_url}/api/run-schedules", data=b"",  # noqa: S310
                                         method="POST")
        with _NO_PROXY.open(request, timeout=120) as response:
            return list(json.load(response)["results"])

    def stop(self) -> None:
        """SIGTERM the runner (it stops chalice and its servers); force only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self.process.returncode != 0 and self.chalice_pid:
            # The runner did not stop cleanly: make sure its chalice child is gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.chalice_pid, signal.SIGKILL)

    def __enter__(self) -> StackHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack(port: int = 0, env_overrides: dict[str, str] | None = None,
                demo_dir: Path | None = None, *, poll_interval: float | None = None,
                timeout: float = 90.0) -> StackHandle:
    """Run the local stack in a child process on free ports; return once the app answers.

    Output of the runner and of ``chalice local`` goes to ``test-artifacts/run_local-<port>.log``.
    """
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"run_local-{port}.log"
    ready = ARTIFACTS / f"run_local-{port}.ready.json"
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "devtools.run_local", "--port", str(port),
               "--outbox-port", "0", "--sandbox-port", "0", "--moto-port", "0",
               "--ready-file", str(ready)]
    if demo_dir is not None:
        command += ["--demo-dir", str(demo_dir)]
    if poll_interval is not None:
        command += ["--poll-interval", str(poll_interval)]
    for name, value in (env_overrides or {}).items():
        command += ["--env", f"{name}={value}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:  # our own interpreter and fixed arguments, no shell
        process = subprocess.Popen(  # noqa: S603  # nosec B603
            command, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            tail = "\n".join(log_path.read_text("utf-8", errors="replace").splitlines()[-60:])
            raise StartupError(f"the local stack did not start (exit {process.returncode}); "
                               f"log {log_path}:\n{tail}")
        time.sleep(0.1)
    info = json.loads(ready.read_text("utf-8"))
    ready.unlink(missing_ok=True)
    return StackHandle(app_url=info["app_url"], outbox_url=info["outbox_url"],
                       sandbox_url=info["sandbox_url"], moto_url=info["moto_url"],
                       log_path=log_path, members=info["members"], schedules=info["schedules"],
                       process=process, chalice_pid=info["chalice_pid"])


if __name__ == "__main__":
    sys.exit(main())
