"""The deployment package (devtools/packaging.py): chalice package, trimmed to what the functions
use, with bytecode; and the packaged app run from the unzipped archive against moto."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from devtools import packaging
from devtools.moto_server import start_moto_server
from tests.integration.test_infra import clean_env

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Built:
    archive: Path
    template: dict[str, Any]
    names: list[str]
    task: Path  # the archive unzipped, as Lambda lays it in /var/task
    log: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`make package STAGE=dev` into a temporary directory, once for this module.

    Slow-ish: about 40 s with Chalice's dependency cache (.chalice/deployments), a few minutes on
    a fresh clone, which downloads the manylinux wheels of requirements.txt from PyPI.
    """
    build = tmp_path_factory.mktemp("package")
    result = subprocess.run(
        [sys.executable, "-m", "devtools.infra", "package", "--stage", "dev", "--build-dir", str(build)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    archive = build / "dev" / "deployment.zip"
    task = build / "task"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        zipped.extractall(task)
    template = json.loads((build / "dev" / "sam.json").read_text("utf-8"))
    return Built(archive, template, names, task, result.stderr)


def test_slow_chalice_package_and_cfn_lint(built: Built) -> None:
    """`chalice package --merge-template` for dev, then cfn-lint: exit 0, no finding."""
    template_path = built.archive.parent / "sam.json"
    assert built.archive.stat().st_size > 1_000_000

    cfn_lint = "import sys; from cfnlint.runner import main; sys.exit(main())"
    lint = subprocess.run([sys.executable, "-c", cfn_lint, "--regions", "us-east-1", "--",
                           str(template_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    resources = built.template["Resources"]
    roles = [r for r in resources.values() if r.get("Type") == "AWS::IAM::Role"]
    assert roles
    for role in roles:  # the merge replaced the static file's patterns with exact ARNs
        assert "arn:aws:dynamodb:*" not in json.dumps(role)
    api = resources["APIHandler"]["Properties"]
    assert api["Environment"]["Variables"]["TABLE_PREFIX"] == "sucursal-virtual-dev"
    assert api["Environment"]["Variables"]["IMPORT_BUCKET"] == {"Ref": "ImportBucket"}
    assert api["MemorySize"] == 1024  # bcrypt cost 12: Lambda's CPU scales with memory
    assert resources["ReconcilePending"]["Properties"]["MemorySize"] == 512
    assert resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]  # chalice's swagger survived
    # The events stream's mapping: Chalice's batch size, the merge template's stream and retries.
    (stream,) = resources["DeliverDomainEvents"]["Properties"]["Events"].values()
    assert stream["Type"] == "DynamoDB"
    assert stream["Properties"]["Stream"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
    assert stream["Properties"]["BatchSize"] == 10
    assert stream["Properties"]["StartingPosition"] == "TRIM_HORIZON"
    assert stream["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    runtime = packaging.lambda_python(built.template)
    with zipfile.ZipFile(built.archive) as zipped:
        assert not packaging.stale_bytecode(zipped)
    names = set(built.names)
    sources = {n for n in names if n.endswith(".py")}
    compiled = {n for n in names if n.endswith(".pyc")}
    assert "app.py" in sources and "chalicelib/__init__.py" in sources
    if runtime == sys.version_info[:2]:
        assert compiled == {importlib.util.cache_from_source(n) for n in sources}
    else:  # another runtime than this Python: nothing compiled, nothing stale from the tree
        assert not compiled


# --- what the package holds ----------------------------------------------------------------------

#: The package may grow, but a surge starts hundreds of containers that each unzip and read it.
MAX_ZIPPED = 15_000_000


def test_the_package_is_small(built: Built) -> None:
    assert built.archive.stat().st_size <= MAX_ZIPPED, built.log[-2000:]
    assert packaging.unzipped_size(built.archive) <= 3 * MAX_ZIPPED


def test_babel_ships_the_colombian_spanish_locale_and_what_it_inherits(built: Built) -> None:
    locales = sorted(n.removeprefix("babel/locale-data/").removesuffix(".dat") for n in built.names
                     if n.startswith("babel/locale-data/") and n.endswith(".dat"))
    assert locales == ["es", "es_419", "es_CO", "root"]
    assert "babel/global.dat" in built.names and "babel/locale-data/LICENSE.unicode" in built.names


def _services_in_the_code() -> set[str]:
    called = {"dynamodb"}  # PynamoDB
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        called.update(re.findall(r"""boto3\.(?:client|resource)\(\s*["']([\w-]+)["']""",
                                 path.read_text("utf-8")))
    return called


def test_botocore_ships_exactly_the_models_of_the_services_the_code_calls(built: Built) -> None:
    shipped = {n.split("/")[2] for n in built.names if n.startswith("botocore/data/") and n.count("/") > 2}
    assert shipped == _services_in_the_code()
    resources = {n.split("/")[2] for n in built.names if n.startswith("boto3/data/") and n.count("/") > 2}
    assert resources <= shipped
    for kept in ("endpoints.json", "partitions.json", "_retry.json", "sdk-default-configuration.json"):
        assert f"botocore/data/{kept}" in built.names


def test_fpdf2_keeps_the_font_tools_it_imports_and_pillow_is_left_out(built: Built) -> None:
    names = set(built.names)
    assert not [n for n in names if n.startswith(("PIL/", "pillow"))]
    for needed in ("fontTools/ttLib/ttFont.py", "fontTools/subset/__init__.py",
                   "fontTools/subset/cff.py", "fontTools/ttLib/tables/_g_l_y_f.py",
                   "fontTools/ttLib/tables/_c_m_a_p.py", "fontTools/varLib/instancer/__init__.py",
                   "fontTools/pens/ttGlyphPen.py"):
        assert needed in names
    for left_out in ("fontTools/feaLib/parser.py", "fontTools/ufoLib/__init__.py",
                     "fontTools/cu2qu/cu2qu.py", "fontTools/misc/bezierTools.c"):
        assert left_out not in names


# --- the packaged app, run from the archive --------------------------------------------------------

#: One call per service whose model is shipped: it loads the model and goes through moto.
HARMLESS_CALLS = {
    "dynamodb": ("list_tables", {}),
    "s3": ("list_buckets", {}),
    "ses": ("list_identities", {}),
    "ssm": ("describe_parameters", {}),
    "cognito-idp": ("list_user_pools", {"MaxResults": 1}),
}

#: Runs in ``python -S`` from the unzipped archive (sys.path: the archive and the standard
#: library, as on Lambda), the environment pointing at a moto server.
PACKAGED_RUN = r"""
import base64, json, os, re, sys, warnings
from datetime import UTC, datetime
from urllib.parse import urlencode

warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import boto3
    for service, (operation, arguments) in json.loads(sys.argv[1]).items():
        getattr(boto3.client(service), operation)(**arguments)

    from chalicelib.adapters.dynamo.tables import create_all_tables
    from chalicelib.config import get_settings
    create_all_tables(get_settings())

    import app

    class Context:
        aws_request_id = "packaged-test"

    def call(method, path, body=None, cookies=()):
        headers = {"Host": "localhost", "Cookie": "; ".join(cookies)}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        event = {"resource": path, "path": path, "httpMethod": method, "headers": headers,
                 "multiValueHeaders": {k: [v] for k, v in headers.items()},
                 "queryStringParameters": None, "multiValueQueryStringParameters": None,
                 "pathParameters": None, "stageVariables": None, "body": body,
                 "isBase64Encoded": False,
                 "requestContext": {"resourcePath": path, "httpMethod": method, "stage": "api",
                                    "requestId": "packaged-test", "identity": {"sourceIp": "127.0.0.1"}}}
        return app.app(event, Context())

    page = call("GET", "/ingresar")
    set_cookies = page.get("multiValueHeaders", {}).get("Set-Cookie", [])
    cookies = [c.split(";", 1)[0] for c in set_cookies]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page["body"]).group(1)
    submitted = call("POST", "/ingresar", urlencode({"csrf_token": token, "document_number": "1020304050"}),
                     cookies)

    from chalicelib.config import get_settings
    from chalicelib.services import receipt_pdf
    from chalicelib.services.payments.receipts import PaymentItemView, ReceiptView

    at = datetime(2026, 11, 23, 15, 3, tzinfo=UTC)
    view = ReceiptView(
        id="p-1", reference="SVABCDEFGHJKLM", status="APPROVED", status_label="Aprobada",
        status_detail=None, is_final=True, can_retry=False, amount=1234567, cus="CUS-1",
        bank_name="BANCO UNION COLOMBIANO", created_at=at, updated_at=at, approved_at=at,
        description="Pago de obligaciones", ip="203.0.113.7", payer_document="1020304050",
        payer_name="Ana María Pérez",
        items=[PaymentItemView("CRE-1", "Crédito", "880012345678", "Cuota 7/36", 1234567)],
        timeline=[("Iniciado", at)])
    pdf = receipt_pdf.render(view, get_settings(), generated_at=at)

print(json.dumps({
    "page_status": page["statusCode"], "page": page["body"], "submitted": submitted["statusCode"],
    "submitted_location": submitted.get("headers", {}).get("Location"),
    "pdf": base64.b64encode(pdf).decode(),
    "warnings": [str(w.message) for w in caught],
    "pil": [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")],
    "origins": {m: os.path.dirname(sys.modules[m].__file__)
                for m in ("boto3", "botocore", "babel", "fpdf", "fontTools", "app")},
}))
"""


def _packaged_env(moto_url: str) -> dict[str, str]:
    """The tests' environment (local stage, fake credentials), moto's URL, no Python paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"AWS_ENDPOINT_URL": moto_url, "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def test_the_packaged_app_renders_a_page_and_a_receipt_from_the_archive_against_moto(built: Built) -> None:
    shipped = sorted({n.split("/")[2] for n in built.names
                      if n.startswith("botocore/data/") and n.count("/") > 2})
    unknown = [s for s in shipped if s not in HARMLESS_CALLS]
    assert not unknown, f"add a harmless call for {unknown} to HARMLESS_CALLS"
    moto = start_moto_server()
    try:
        done = subprocess.run([sys.executable, "-S", "-c", PACKAGED_RUN,
                               json.dumps({s: HARMLESS_CALLS[s] for s in shipped})],
                              cwd=built.task, env=_packaged_env(moto.url), capture_output=True,
                              text=True, timeout=300)
    finally:
        moto.stop()
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for module, origin in result["origins"].items():
        assert Path(origin).resolve().is_relative_to(built.task.resolve()), module

    assert result["page_status"] == 200 and '<html lang="es-CO">' in result["page"]
    assert (result["submitted"], result["submitted_location"]) == (303, "/ingresar/clave")

    pdf = PdfReader(io.BytesIO(base64.b64decode(result["pdf"])))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    for expected in ("SVABCDEFGHJKLM", "$ 1.234.567", "23 de noviembre de 2026, 10:03 a. m.",
                     "BANCO UNION COLOMBIANO"):
        assert expected in text
    assert result["pil"] == []
    # fpdf2 says once per container, on its first import, that it could not embed images.
    assert [w for w in result["warnings"] if "Pillow" not in w] == []


#: fpdf2 from the archive embeds a TrueType font: fontTools loads it and subsets it.
TRUETYPE_RUN = r"""
import base64, sys
from fpdf import FPDF
pdf = FPDF()
pdf.add_font("Embedded", "", sys.argv[1])
pdf.add_page()
pdf.set_font("Embedded", "", 12)
pdf.cell(150, 10, "Comprobante de pago: señor Muñoz • $ 1.234.567")
print(base64.b64encode(bytes(pdf.output())).decode())
"""
SYSTEM_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def test_fonttools_from_the_archive_subsets_and_embeds_a_truetype_font(built: Built) -> None:
    fonts = sorted(built.task.rglob("*.ttf")) or ([SYSTEM_FONT] if SYSTEM_FONT.exists() else [])
    if not fonts:
        pytest.skip("no TrueType font in the package nor DejaVu Sans on this machine")
    done = subprocess.run([sys.executable, "-S", "-c", TRUETYPE_RUN, str(fonts[0])], cwd=built.task,
                          env=_packaged_env("http://127.0.0.1:9"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    data = base64.b64decode(done.stdout.strip().splitlines()[-1])
    assert b"/FontFile2" in data  # the subset font is embedded
    assert len(data) < fonts[0].stat().st_size  # a subset, not the whole font
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "señor Muñoz • $ 1.234.567" in text


# --- trimming, on small archives ---------------------------------------------------------------------

def _zip(path: Path, entries: dict[str, bytes], *, date: tuple[int, ...] = (2026, 11, 1, 12, 0, 0)) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            zipped.writestr(zipfile.ZipInfo(name, date_time=date), data)
    return path


TRIMMABLE = {
    "app.py": b"import boto3\nimport fpdf\nCLIENT = boto3.client(\n    'ses')\n",
    "chalicelib/__init__.py": b"",
    "fpdf/__init__.py": b"from fontTools import ttLib\nfrom fontTools.subset import Subsetter\n",
    "fontTools/__init__.py": b"",
    "fontTools/ttLib/__init__.py": b"from .ttFont import TTFont\n",
    "fontTools/ttLib/ttFont.py": b"def f():\n    from fontTools.misc import textTools\n",
    "fontTools/ttLib/tables/__init__.py": b"",
    "fontTools/ttLib/tables/_g_l_y_f.py": b"",
    "fontTools/ttLib/tables/table_API_readme.txt": b"kept with its package",
    "fontTools/misc/__init__.py": b"",
    "fontTools/misc/textTools.py": b"from . import bezierTools\n",
    "fontTools/misc/bezierTools.py": b"",
    "fontTools/misc/bezierTools.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
    "fontTools/misc/bezierTools.c": b"/* Cython output */",
    "fontTools/misc/plistlib/__init__.py": b"",
    "fontTools/subset/__init__.py": b"from fontTools.ttLib import TTFont\nclass Subsetter: pass\n",
    "fontTools/feaLib/__init__.py": b"",
    "fontTools/feaLib/lexer.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
    "fontTools/feaLib/data.txt": b"left out with its package",
    "PIL/__init__.py": b"",
    "pillow-13.0.0.dist-info/METADATA": b"",
    "babel/__init__.py": b"",
    "babel/global.dat": b"",
    "babel/locale-data/es.dat": b"",
    "babel/locale-data/es_419.dat": b"",
    "babel/locale-data/es_CO.dat": b"",
    "babel/locale-data/root.dat": b"",
    "babel/locale-data/fr.dat": b"",
    "babel/locale-data/LICENSE.unicode": b"",
    "botocore/__init__.py": b"",
    "botocore/data/endpoints.json": b"{}",
    "botocore/data/ses/2010-12-01/service-2.json.gz": b"",
    "botocore/data/ec2/2016-11-15/service-2.json.gz": b"",
    "boto3/data/ec2/2016-11-15/resources-1.json": b"{}",
}
TRIMMED = {
    "app.py", "chalicelib/__init__.py", "fpdf/__init__.py", "fontTools/__init__.py",
    "fontTools/ttLib/__init__.py", "fontTools/ttLib/ttFont.py", "fontTools/ttLib/tables/__init__.py",
    "fontTools/ttLib/tables/_g_l_y_f.py", "fontTools/ttLib/tables/table_API_readme.txt",
    "fontTools/misc/__init__.py", "fontTools/misc/textTools.py", "fontTools/misc/bezierTools.py",
    "fontTools/misc/bezierTools.cpython-311-x86_64-linux-gnu.so", "fontTools/subset/__init__.py",
    "babel/__init__.py", "babel/global.dat", "babel/locale-data/es.dat", "babel/locale-data/es_419.dat",
    "babel/locale-data/es_CO.dat", "babel/locale-data/root.dat", "babel/locale-data/LICENSE.unicode",
    "botocore/__init__.py", "botocore/data/endpoints.json", "botocore/data/ses/2010-12-01/service-2.json.gz",
}


def test_trim_keeps_what_the_code_reaches(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "deployment.zip", dict(reversed(TRIMMABLE.items())))
    done = packaging.trim(archive, "es_CO")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert {i.date_time for i in zipped.infolist()} == {(2026, 11, 1, 12, 0, 0)}
    assert names == sorted(TRIMMED)
    assert done.plan.services == {"ses"} and done.plan.locales == {"es", "es_419", "es_CO", "root"}
    assert done.missing == []
    assert set(done.dropped) == {"Pillow", "Babel locales", "service models", "fontTools modules"}
    assert done.dropped["fontTools modules"][0] == 5  # feaLib (3), plistlib, bezierTools.c


def test_trim_is_deterministic_and_independent_of_the_entry_order(tmp_path: Path) -> None:
    first = _zip(tmp_path / "first.zip", TRIMMABLE)
    second = _zip(tmp_path / "second.zip", dict(reversed(TRIMMABLE.items())))
    packaging.trim(first, "es_CO")
    packaging.trim(second, "es_CO")
    assert first.read_bytes() == second.read_bytes()


def test_trim_reports_a_service_the_code_calls_but_the_package_lacks(tmp_path: Path) -> None:
    entries = {**TRIMMABLE, "chalicelib/queue.py": b"import boto3\nQ = boto3.client('sqs')\n"}
    done = packaging.trim(_zip(tmp_path / "deployment.zip", entries), "es_CO")
    assert done.missing == ["botocore/data/sqs/"]


def test_a_client_whose_service_is_not_literal_stops_the_build() -> None:
    with pytest.raises(SystemExit, match="names no service literally"):
        packaging.services_called({"chalicelib/x.py": b"import boto3\nc = boto3.client(name)\n"})


def test_import_closure_follows_relative_imports_and_imports_inside_functions() -> None:
    sources = {name: data for name, data in TRIMMABLE.items() if name.endswith(".py")}
    kept = packaging.import_closure(sources, "fontTools", ("fontTools.ttLib.tables.",))
    assert kept == {"fontTools", "fontTools.ttLib", "fontTools.ttLib.ttFont", "fontTools.ttLib.tables",
                    "fontTools.ttLib.tables._g_l_y_f", "fontTools.misc", "fontTools.misc.textTools",
                    "fontTools.misc.bezierTools", "fontTools.subset"}


# --- bytecode in the package ---------------------------------------------------------------------

HERE = sys.version_info[:2]
TAG = sys.implementation.cache_tag


def _archive(path: Path) -> Path:
    """A small chalice-like package: app.py, a package, and a stale timestamp .pyc from the tree."""
    return _zip(path, {
        "app.py": b"import pkg\nVALUE = pkg.f()\n",
        "pkg/__init__.py": b"def f():\n    return 'x' in {'x', 'y', 'z'}\n",
        f"pkg/__pycache__/__init__.{TAG}.pyc": b"stale bytes from the local tree",
        "pkg/__pycache__/__init__.cpython-39.pyc": b"another Python's",
        "pkg/data.json": b"{}",
    })


def test_ship_bytecode_replaces_the_stale_pyc_with_fresh_ones(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "deployment.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert len(packaging.stale_bytecode(zipped)) == 2

    done = packaging.ship_bytecode(archive, HERE)

    assert (done.removed, done.compiled, done.sources) == (2, 2, 2)
    assert not done.failed and done.skipped_reason is None
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.namelist() == ["app.py", f"__pycache__/app.{TAG}.pyc", "pkg/__init__.py",
                                     f"pkg/__pycache__/__init__.{TAG}.pyc", "pkg/data.json"]
        assert packaging.stale_bytecode(zipped) == []
        assert {i.date_time for i in zipped.infolist() if i.filename.endswith(".pyc")} == {packaging.ZIP_DATE}
        zipped.extractall(tmp_path / "task")
    # The shipped bytecode is what runs, even if the .py changed after (unchecked hash).
    (tmp_path / "task" / "pkg" / "__init__.py").write_text("def f():\n    return 'changed'\n")
    run = subprocess.run([sys.executable, "-S", "-B", "-c", "import app; print(app.VALUE)"],
                         cwd=tmp_path / "task", capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "True", run.stderr


def test_ship_bytecode_is_deterministic(tmp_path: Path) -> None:
    first, second = _archive(tmp_path / "first.zip"), _archive(tmp_path / "second.zip")
    packaging.ship_bytecode(first, HERE)
    packaging.ship_bytecode(second, HERE)
    assert first.read_bytes() == second.read_bytes()


def test_ship_bytecode_for_another_runtime_compiles_nothing(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "deployment.zip")
    done = packaging.ship_bytecode(archive, (HERE[0], HERE[1] + 1))
    assert (done.removed, done.compiled) == (2, 0)
    assert done.skipped_reason and f"{HERE[0]}.{HERE[1] + 1}" in done.skipped_reason
    with zipfile.ZipFile(archive) as zipped:
        assert not [n for n in zipped.namelist() if "__pycache__" in n]


@pytest.mark.parametrize(("runtimes", "expected"), [
    (["python3.11", "python3.11"], (3, 11)),
    (["python3.12"], (3, 12)),
    (["python3.11", "python3.12"], None),
    (["nodejs20.x"], None),
])
def test_lambda_python_reads_the_functions_runtime(runtimes: list[str], expected) -> None:
    template = {"Resources": {f"F{i}": {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": r}}
                              for i, r in enumerate(runtimes)}}
    assert packaging.lambda_python(template) == expected
