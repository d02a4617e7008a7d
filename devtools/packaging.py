"""The deployment package: ``chalice package``, then only what the functions use, then bytecode.

:func:`build` is what ``make package`` runs after :mod:`devtools.infra` has written the merge
template: ``chalice package --merge-template`` into ``build/<stage>/`` (sam.json and
deployment.zip), then two rewrites of deployment.zip in place, then cfn-lint.

1. :func:`trim` leaves out what no function can reach (a Lambda container unzips and reads what it
   is given, on every cold start of a surge):

   * botocore's and boto3's service models, but for the services the code calls
     (:func:`services_called`: ``boto3.client("...")`` in the app's own code, and DynamoDB for
     PynamoDB);
   * Babel's locale data, but for the locale the app formats (``chalicelib.formatting.LOCALE``)
     and those Babel merges into it (:func:`babel_locales`: es_CO, es_419, es, root);
   * fontTools, but for the modules that fpdf2 and the app import, directly or through other
     fontTools modules, and the table modules ``TTFont`` loads by tag (:func:`import_closure`):
     font loading, subsetting and embedding keep working, the font-building and -compiling tools
     go;
   * Pillow (:data:`LEFT_OUT`): fpdf2 imports it only to embed raster images, and the receipt
     draws none.

   Entries come out sorted by name, so the archive does not depend on the order in which
   ``chalice package`` walked its directories.
2. :func:`ship_bytecode` replaces the ``__pycache__`` copied from the working tree with fresh
   unchecked-hash ``.pyc`` for every ``.py`` (see :func:`ship_bytecode`).

Both rewrites are deterministic (fixed dates and modes, sorted entries, a fixed hash seed for the
compiler): the same input gives a byte-identical deployment.zip.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REGION = "us-east-1"
#: Where Lambda unpacks the package: the file name compiled into the bytecode (tracebacks).
LAMBDA_TASK_ROOT = "/var/task"
#: The date of every entry written (chalice's own entries carry it too): same input, same zip.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: Flags of a hash-based .pyc that is never checked against its source (PEP 552).
UNCHECKED_HASH_FLAGS = 0b01

#: The app's own code in the package: where :func:`services_called` looks.
APP_CODE = ("app.py", "chalicelib/")
#: A vendored package that calls an AWS service itself: the service whose model it needs.
IMPLIED_SERVICES = {"pynamodb": "dynamodb"}
#: ``boto3.client("ses", ...)``, ``boto3.resource("s3")``: the service is a literal, always.
_BOTO3_CALL = re.compile(r"""boto3\.(?:client|resource)\(\s*(?:["']([\w-]+)["'])?""")
#: Where the service models are: ``<dir>/<service>/<api version>/...`` (boto3's: resources).
BOTOCORE_MODELS = "botocore/data/"
MODEL_DIRS = (BOTOCORE_MODELS, "boto3/data/")
BABEL_LOCALE_DIR = "babel/locale-data/"
#: Distributions that are installed (another one requires them) but that no function uses:
#: the archive prefixes they occupy, and why.
LEFT_OUT = {
    "Pillow": (("PIL/", "pillow.libs/", "pillow-"),
               "fpdf2 imports it only to embed raster images; the receipt draws none"),
}
#: Packages shipped only as far as the rest of the package imports them: the package, and the
#: prefixes of the modules it imports by name at run time (kept whole).
IMPORTED_ONLY = {"fontTools": ("fontTools.ttLib.tables.",)}  # TTFont: __import__ by table tag
#: Sources of compiled extensions: the .so is what imports.
EXTENSION_SOURCES = (".c", ".pyx", ".pxd")

#: Run by :func:`babel_locales` in a fresh interpreter (Babel caches what it has read): the
#: locales whose data Babel reads to build the given one.
_BABEL_READS = """
import sys
from babel import Locale, localedata
read = []
resolve = localedata.resolve_locale_filename
def recording(name):
    read.append(str(name))
    return resolve(name)
localedata.resolve_locale_filename = recording
Locale.parse(sys.argv[1]).decimal_formats
print("\\n".join(dict.fromkeys(read)))
"""


def _log(message: str) -> None:
    print(f"[package] {message}", file=sys.stderr, flush=True)


# --- what the functions use --------------------------------------------------------------------

def services_called(sources: dict[str, bytes]) -> set[str]:
    """The AWS services the app's code creates boto3 clients or resources for, plus those its
    vendored packages call (:data:`IMPLIED_SERVICES`). ``sources``: archive name -> bytes.

    A client whose service is not a literal fails: its model could not be kept.
    """
    called: set[str] = set()
    for name, data in sources.items():
        if name.startswith(APP_CODE) and name.endswith(".py"):
            for match in _BOTO3_CALL.finditer(data.decode("utf-8")):
                if not match.group(1):
                    raise SystemExit(f"{name}: {match.group(0)!r}... names no service literally: "
                                     "packaging could not keep its botocore model")
                called.add(match.group(1))
    tops = {name.split("/", 1)[0] for name in sources}
    called |= {service for package, service in IMPLIED_SERVICES.items() if package in tops}
    return called


def babel_locales(identifier: str) -> list[str]:
    """The locales whose data Babel reads for ``identifier``: itself and what it inherits
    (``es_CO`` -> es_CO, root, es, es_419: CLDR makes es_419 the parent of Latin American
    Spanish). Asked of Babel itself, so a new CLDR parent is picked up on the next build."""
    done = subprocess.run([sys.executable, "-c", _BABEL_READS, identifier], cwd=ROOT,  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def _module(name: str) -> tuple[str, bool] | None:
    """``(dotted module name, is a package)`` of an archive entry that imports as a module
    (``a/b.py``, ``a/__init__.py``, ``a/b.cpython-311-x86_64-linux-gnu.so``), else None."""
    path = PurePosixPath(name)
    if "__pycache__" in path.parts:
        return None
    if path.suffix == ".py":
        stem = path.stem
    elif path.suffix == ".so":
        stem = path.name.split(".", 1)[0]
    else:
        return None
    if stem == "__init__":
        return ".".join(path.parent.parts), True
    return ".".join((*path.parent.parts, stem)), False


def _compiled_module(name: str) -> tuple[str, bool] | None:
    """The module of a ``__pycache__/<module>.<tag>.pyc`` entry (None for another layout)."""
    try:
        return _module(importlib.util.source_from_cache(name))
    except ValueError:
        return None


def _imports(module: str, is_package: bool, source: bytes) -> set[str]:
    """Every name an ``import`` statement of the module could load, wherever the statement is
    (inside functions and ``try`` too), relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = ".".join(filter(None, (base, node.module))) if node.level else node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_closure(sources: dict[str, bytes], package: str, dynamic: Iterable[str] = ()) -> set[str]:
    """The modules of ``package`` that the rest of the archive imports, with everything they
    import in turn (statically, wherever the ``import`` statement is), their parent packages,
    and every module whose name starts with one of the ``dynamic`` prefixes.

    ``sources``: archive name -> bytes of every module (``.py`` and ``.so``). An extension module
    is read through its pure-Python twin where it has one (fontTools' are Cython-compiled ``.py``);
    one without is kept when imported, without following its own imports.
    """
    modules: dict[str, tuple[bool, bytes]] = {}
    for name, data in sources.items():
        found = _module(name)
        if found and (found[0] not in modules or name.endswith(".py")):
            modules[found[0]] = (found[1], data if name.endswith(".py") else b"")
    inside = f"{package}."
    wanted = [m for m in modules if m.startswith(tuple(dynamic))]
    for name, (is_package, data) in modules.items():
        if name != package and not name.startswith(inside) and package.encode() in data:
            wanted += _imports(name, is_package, data)
    kept: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in kept or name not in modules or not (name == package or name.startswith(inside)):
            continue
        kept.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            wanted.append(parent)
        is_package, data = modules[name]
        wanted += _imports(name, is_package, data)
    return kept


@dataclass(frozen=True)
class Plan:
    """What :func:`trim` keeps of the parts it trims (everything else is kept whole)."""
    services: frozenset[str]            # botocore/boto3 service models
    locales: frozenset[str]             # Babel's locale-data/<locale>.dat
    modules: dict[str, frozenset[str]]  # package -> its modules kept (IMPORTED_ONLY)

    def drops(self, name: str) -> str | None:
        """Why the entry ``name`` is left out (a group for the report), or None to keep it."""
        for distribution, (prefixes, _) in LEFT_OUT.items():
            if name.startswith(prefixes):
                return distribution
        for models in MODEL_DIRS:
            if name.startswith(models) and name.count("/") > 2:
                service = name[len(models):].split("/", 1)[0]
                return None if service in self.services else "service models"
        if name.startswith(BABEL_LOCALE_DIR) and name.endswith(".dat"):
            locale = name[len(BABEL_LOCALE_DIR):-len(".dat")]
            return None if locale in self.locales else "Babel locales"
        top = name.split("/", 1)[0]
        if top not in self.modules:
            return None
        if name.endswith(EXTENSION_SOURCES):
            return f"{top} modules"
        module = _module(name)
        if module is None and name.endswith(".pyc"):
            module = _compiled_module(name)
        if module is None:  # a data file: kept with its package
            owner = ".".join(PurePosixPath(name).parent.parts)
            return None if owner in self.modules[top] else f"{top} modules"
        return None if module[0] in self.modules[top] else f"{top} modules"


def plan(sources: dict[str, bytes], locale: str) -> Plan:
    """The :class:`Plan` for an archive's modules (name -> source, empty for a ``.so``) and the
    app's locale."""
    return Plan(
        services=frozenset(services_called(sources)),
        locales=frozenset(babel_locales(locale)),
        modules={package: frozenset(import_closure(sources, package, dynamic))
                 for package, dynamic in IMPORTED_ONLY.items()},
    )


@dataclass(frozen=True)
class Trimmed:
    """What :func:`trim` did to a deployment.zip."""
    plan: Plan
    kept: int                                  # entries
    dropped: dict[str, tuple[int, int]] = field(default_factory=dict)  # group -> (entries, bytes)
    missing: list[str] = field(default_factory=list)  # a service or locale kept but not found


def _entry(name: str, like: zipfile.ZipInfo | None = None) -> zipfile.ZipInfo:
    """A deflated entry with the date and mode of ``like`` (default: ZIP_DATE, rw-r--r--)."""
    info = zipfile.ZipInfo(name, date_time=like.date_time if like else ZIP_DATE)
    info.external_attr = like.external_attr if like else 0o100644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _rewrite(archive: Path, write: Callable[[zipfile.ZipFile, zipfile.ZipFile], None]) -> None:
    """Rewrite ``archive`` in place through ``write(source zip, new zip)``."""
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(archive) as zipped, zipfile.ZipFile(partial, "w") as out:
        write(zipped, out)
    partial.replace(archive)


def _copy(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, out: zipfile.ZipFile) -> None:
    with zipped.open(info) as source, out.open(_entry(info.filename, info), "w") as target:
        shutil.copyfileobj(source, target)


def trim(archive: Path, locale: str) -> Trimmed:
    """Rewrite ``archive`` in place without what no function uses (see the module docstring),
    its entries sorted by name. ``locale``: the one the app formats."""
    result: dict[str, Any] = {}

    def write(zipped: zipfile.ZipFile, out: zipfile.ZipFile) -> None:
        infos = sorted(zipped.infolist(), key=lambda info: info.filename)
        the_plan = plan({i.filename: zipped.read(i) if i.filename.endswith(".py") else b""
                         for i in infos if _module(i.filename)}, locale)
        dropped: dict[str, tuple[int, int]] = {}
        kept = 0
        for info in infos:
            group = the_plan.drops(info.filename)
            if group is None:
                _copy(zipped, info, out)
                kept += 1
            else:
                entries, size = dropped.get(group, (0, 0))
                dropped[group] = (entries + 1, size + info.file_size)
        names = {info.filename for info in infos}
        missing = [f"{BOTOCORE_MODELS}{service}/" for service in sorted(the_plan.services)
                   if not any(n.startswith(f"{BOTOCORE_MODELS}{service}/") for n in names)]
        missing += [f"{BABEL_LOCALE_DIR}{locale_}.dat" for locale_ in sorted(the_plan.locales)
                    if f"{BABEL_LOCALE_DIR}{locale_}.dat" not in names]
        result.update(plan=the_plan, kept=kept, dropped=dropped, missing=missing)

    _rewrite(archive, write)
    return Trimmed(**result)


# --- chalice package and cfn-lint --------------------------------------------------------------

def aws_env() -> dict[str, str]:
    """The environment for `chalice package`: a region, and fake credentials if none are set
    (packaging calls no AWS API; botocore only wants them present)."""
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION") or DEFAULT_REGION)
    has_credentials = env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE")
    if not has_credentials:
        env.update({"AWS_ACCESS_KEY_ID": "packaging-only", "AWS_SECRET_ACCESS_KEY": "packaging-only"})
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def lint(template: Path, region: str) -> int:
    """cfn-lint's exit code (bit flags: 2 errors, 4 warnings, 8 informational)."""
    command = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
               "--regions", region, "--non-zero-exit-code", "warning", "--", str(template)]
    return subprocess.run(command, cwd=ROOT, check=False).returncode  # noqa: S603 (our own argv)

# --- bytecode in deployment.zip ----------------------------------------------------------------



@dataclass(frozen=True)
class Bytecode:
    """What :func:`ship_bytecode` did to a deployment.zip."""
    removed: int            # __pycache__ entries chalice copied from the local tree
    compiled: int           # fresh .pyc added
    sources: int            # .py files in the archive
    failed: list[str]       # .py that do not compile (Python could not import them either)
    skipped_reason: str | None  # why nothing was compiled (runtime and interpreter differ)


def lambda_python(template: dict[str, Any]) -> tuple[int, int] | None:
    """The Python version of the packaged functions' runtime (``python3.11`` -> (3, 11)); None when
    they are not one Python runtime."""
    runtimes = {resource.get("Properties", {}).get("Runtime")
                or template.get("Globals", {}).get("Function", {}).get("Runtime")
                for resource in template.get("Resources", {}).values()
                if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    if len(runtimes) != 1:
        return None
    (runtime,) = runtimes
    major, _, minor = str(runtime).removeprefix("python").partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


def _compile(sources: dict[str, bytes]) -> dict[str, bytes]:
    """``{archive name of the .pyc: bytecode}`` for the sources that compile, by this interpreter.

    Unchecked-hash .pyc (PEP 552): the importer loads them without comparing anything with the
    .py. Timestamp .pyc would be compared with the .py's mtime, which the zip rounds and Lambda's
    unpacking may not keep; on a mismatch Python recompiles on every cold start, since /var/task
    is read-only and the new .pyc cannot be written. Checked-hash .pyc would read and hash every
    .py on each import. The package is immutable, so the check would never find anything.
    ``compileall`` runs in a child with a fixed hash seed: set constants (``x in {"a", "b"}``) are
    marshalled in hash order, so the bytes are the same on every run.
    """
    with tempfile.TemporaryDirectory(prefix="sv-bytecode-") as tmp:
        tree = Path(tmp)
        for name, data in sources.items():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONOPTIMIZE")}
        env["PYTHONHASHSEED"] = "0"
        command = [sys.executable, "-m", "compileall", "-q", "-j", "0", "-o", "0",
                   "--invalidation-mode", "unchecked-hash", "-s", str(tree), "-p", LAMBDA_TASK_ROOT,
                   str(tree)]
        # A non-zero exit means some file did not compile: the caller reports which.
        subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL)  # noqa: S603 (our own argv)
        compiled: dict[str, bytes] = {}
        for name in sources:
            pyc = importlib.util.cache_from_source(name)
            if (tree / pyc).exists():
                compiled[pyc] = (tree / pyc).read_bytes()
        return compiled


def ship_bytecode(archive: Path, runtime: tuple[int, int] | None) -> Bytecode:
    """Rewrite ``archive`` in place: without the ``__pycache__`` entries chalice copied from the
    local tree (compiled by whatever Python and with timestamps), and with a fresh
    ``__pycache__/<module>.cpython-3XY.pyc`` next to every .py (app and vendored packages) when
    ``runtime`` is this interpreter's version. Entries keep their order, each .pyc follows its .py.
    """
    here = sys.version_info[:2]
    skipped = None
    if runtime != here:
        skipped = (f"the Lambda runtime is Python {'.'.join(map(str, runtime)) if runtime else '?'} "
                   f"but this interpreter is {here[0]}.{here[1]}")
    result: dict[str, Any] = {}

    def write(zipped: zipfile.ZipFile, out: zipfile.ZipFile) -> None:
        infos = zipped.infolist()
        kept = [info for info in infos if "__pycache__/" not in info.filename]
        sources = {info.filename: zipped.read(info) for info in kept if info.filename.endswith(".py")}
        compiled = {} if skipped else _compile(sources)
        for info in kept:
            _copy(zipped, info, out)
            pyc = importlib.util.cache_from_source(info.filename) if info.filename in sources else None
            if pyc in compiled:
                out.writestr(_entry(pyc), compiled[pyc])
        failed = [] if skipped else sorted(
            name for name in sources if importlib.util.cache_from_source(name) not in compiled)
        result.update(removed=len(infos) - len(kept), compiled=len(compiled), sources=len(sources),
                      failed=failed)

    _rewrite(archive, write)
    return Bytecode(**result, skipped_reason=skipped)


def stale_bytecode(zipped: zipfile.ZipFile) -> list[str]:
    """The .pyc entries this interpreter would not load as they are, without its .py: another
    Python's (tag or magic number), timestamp-based or checked, or compiled from other source."""
    names = set(zipped.namelist())
    stale = []
    for name in sorted(n for n in names if n.endswith(".pyc")):
        try:
            source = importlib.util.source_from_cache(name)
        except ValueError:  # not in a __pycache__ directory, or an optimized (-O) one
            stale.append(name)
            continue
        header = zipped.read(name)[:16]
        if (importlib.util.cache_from_source(source) != name  # another Python's tag
                or source not in names or header[:4] != importlib.util.MAGIC_NUMBER
                or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS
                or header[8:16] != importlib.util.source_hash(zipped.read(source))):
            stale.append(name)
    return stale


# --- the whole build -----------------------------------------------------------------------------

def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def unzipped_size(archive: Path) -> int:
    with zipfile.ZipFile(archive) as zipped:
        return sum(info.file_size for info in zipped.infolist())


def _report_trim(trimmed: Trimmed) -> None:
    for group, (entries, size) in sorted(trimmed.dropped.items()):
        why = f" ({LEFT_OUT[group][1]})" if group in LEFT_OUT else ""
        _log(f"trim: left out {group}{why}: {entries} files, {_mb(size)} unzipped")
    kept = trimmed.plan
    modules = ", ".join(f"{len(names)} {package} modules" for package, names in kept.modules.items())
    _log(f"trim: kept the models of {', '.join(sorted(kept.services))}; the locales "
         f"{', '.join(sorted(kept.locales))}; {modules}; {trimmed.kept} files in all")


def build(stage_name: str, merge_path: Path, out_dir: Path, *, locale: str,
          run_lint: bool = True) -> int:
    """``chalice package`` with the merge template into ``out_dir``, then :func:`trim` (for the
    app's ``locale``), :func:`ship_bytecode` and (``run_lint``) cfn-lint. Returns an exit code."""
    started = time.monotonic()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    env = aws_env()
    command = [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())",
               "--project-dir", str(ROOT), "package", "--stage", stage_name,
               "--merge-template", str(merge_path), str(out_dir)]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603 (our own argv)
    t_package = time.monotonic()
    if result.returncode != 0:
        _log(f"chalice package failed ({result.returncode})")
        return result.returncode or 1
    template = out_dir / "sam.json"
    archive = out_dir / "deployment.zip"
    with zipfile.ZipFile(archive) as zf:
        leaked = sorted({n.split("/")[0] for n in zf.namelist()
                         if n.startswith(("devtools/", "tests/", "bench/"))})
    if leaked:  # the sandbox and the tests are not part of the deployed package (SPEC §3.1)
        _log(f"deployment.zip contains development code: {leaked}")
        return 1
    _log(f"chalice package: {template} and {archive} ({_mb(archive.stat().st_size)}, "
         f"{_mb(unzipped_size(archive))} unzipped) ({t_package - started:.1f} s)")

    trimmed = trim(archive, locale)
    t_trim = time.monotonic()
    _report_trim(trimmed)
    if trimmed.missing:
        _log(f"trim: the package has no {', '.join(trimmed.missing)}: the functions would fail")
        return 1
    _log(f"trim: {_mb(archive.stat().st_size)} ({t_trim - t_package:.1f} s)")

    bytecode = ship_bytecode(archive, lambda_python(json.loads(template.read_text("utf-8"))))
    t_bytecode = time.monotonic()
    _log(f"bytecode: removed {bytecode.removed} stale __pycache__ entries from the local tree")
    if bytecode.skipped_reason:
        _log(f"bytecode: NOT compiled, {bytecode.skipped_reason} (run `make package` with the "
             "runtime's Python); the package ships no .pyc, each cold start compiles its modules")
    else:
        _log(f"bytecode: {bytecode.compiled} of {bytecode.sources} .py compiled for "
             f"{sys.implementation.cache_tag} (unchecked-hash) ({t_bytecode - t_trim:.1f} s)")
    if bytecode.failed:
        _log(f"bytecode: {len(bytecode.failed)} .py do not compile: {', '.join(bytecode.failed[:5])}")
    _log(f"deployment.zip: {_mb(archive.stat().st_size)}, {_mb(unzipped_size(archive))} unzipped")

    if run_lint:
        region = env["AWS_DEFAULT_REGION"]
        code = lint(template, region)
        t_lint = time.monotonic()
        if code & 2 or code == 1:
            _log(f"cfn-lint found errors (exit {code}, {t_lint - t_bytecode:.1f} s)")
            return 2
        _log(f"cfn-lint: {'clean' if code == 0 else f'warnings only (exit {code})'} "
             f"({t_lint - t_bytecode:.1f} s)")
    return 0
