"""Import a core-system CSV file from the command line (SPEC §4)::

    python -m devtools.import_cli members FILE.csv
    python -m devtools.import_cli obligations FILE.csv [--partial] [--force-close]
    python -m devtools.import_cli s3://BUCKET/imports/obligations.csv [--force-close]

A local file is streamed into the tables. An ``s3://`` object goes through the very code the
``import_from_s3`` Lambda runs (chalicelib/services/import_jobs.py): the kind comes from the
object's name, the object is streamed, and the report is written next to it under ``reports/``.

It writes to whatever the environment points at (``AWS_ENDPOINT_URL`` for a local moto server,
``TABLE_PREFIX`` for the table names; the local stage's values from ``.chalice/config.json`` are
used for what the environment does not set). Progress goes to stderr every 10,000 rows; the
report (summary, closing, every rejected line) and a last summary line go to stdout.
Exit code: 0 all rows in, 1 some rows rejected, 2 the file could not be read, 3 another
obligations import is running (try again when it ends).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("members", "obligations")
EXIT_BUSY = 3


def local_stage_env(stage: str = "local") -> dict[str, str]:
    """The environment variables ``chalice local --stage <stage>`` gives the app."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text("utf-8"))
    return {**config.get("environment_variables", {}),
            **config.get("stages", {}).get(stage, {}).get("environment_variables", {})}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.import_cli",
        description="Importa asociados u obligaciones desde un CSV local o desde s3://BUCKET/KEY.")
    parser.add_argument("args", nargs="+", metavar="[members|obligations] ARCHIVO",
                        help="el tipo y la ruta del archivo; para s3://BUCKET/imports/... el tipo "
                             "sale del nombre (members*.csv, obligations*.csv)")
    parser.add_argument("--partial", action="store_true",
                        help="obligaciones: archivo parcial, no cierra las ausentes")
    parser.add_argument("--force-close", action="store_true",
                        help="obligaciones: cerrar las ausentes aunque sean más que las del archivo")
    args = parser.parse_args(argv)
    if len(args.args) == 1 and args.args[0].startswith("s3://"):
        args.kind, args.source = None, args.args[0]
    elif len(args.args) == 2 and args.args[0] in KINDS:
        args.kind, args.source = args.args
    else:
        parser.error("use: members|obligations ARCHIVO, o s3://BUCKET/imports/ARCHIVO.csv")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for name, value in local_stage_env().items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if os.environ.get("AWS_ENDPOINT_URL"):  # a local moto: any credentials will do
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

    # Imported only now: table names are fixed when the models are imported.
    from chalicelib.services.imports import ImportBusy

    started = time.monotonic()

    def progress(rows: int) -> None:
        print(f"... {rows} filas procesadas ({time.monotonic() - started:.1f} s)", file=sys.stderr,
              flush=True)

    now = datetime.now(UTC)
    try:
        if args.source.startswith("s3://"):
            return _from_s3(args, now, progress)
        return _from_file(args, now, progress)
    except ImportBusy as exc:
        print(f"No se importó: {exc}", file=sys.stderr)
        return EXIT_BUSY


def _from_file(args: argparse.Namespace, now: datetime, progress) -> int:  # type: ignore[no-untyped-def]
    from chalicelib.services.imports import import_members, import_obligations

    path = Path(args.source)
    try:
        with path.open("rb") as stream:
            if args.kind == "members":
                report = import_members(stream, now=now, progress=progress, source=str(path))
            else:
                report = import_obligations(stream, now=now, progress=progress,
                                            full=not args.partial, force_close=args.force_close,
                                            source=str(path))
    except OSError as exc:
        print(f"No se pudo abrir {path}: {exc}", file=sys.stderr)
        return 2
    print(report.to_text())
    print(f"Resumen: {report.summary()}")
    return report.exit_code


def _from_s3(args: argparse.Namespace, now: datetime, progress) -> int:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.s3 import s3_client
    from chalicelib.config import get_settings
    from chalicelib.services import import_jobs

    bucket, _, key = args.source[len("s3://"):].partition("/")
    if not bucket or not key:
        print(f"Dirección S3 inválida: {args.source} (use s3://BUCKET/imports/ARCHIVO.csv)",
              file=sys.stderr)
        return 2
    kind = import_jobs.kind_of(key)
    if args.kind and kind.kind and args.kind != kind.kind:
        print(f"El nombre {key} indica {kind.kind}, no {args.kind}", file=sys.stderr)
        return 2
    if args.partial:
        print("--partial no aplica a S3: el nombre del archivo lo dice (…parcial….csv)",
              file=sys.stderr)
        return 2
    try:
        result = import_jobs.import_s3_object(bucket, key, now=now,
                                              s3=s3_client(get_settings()),
                                              progress=progress, force_close=args.force_close)
    except FileNotFoundError as exc:
        print(f"No se pudo abrir {args.source}: {exc}", file=sys.stderr)
        return 2
    print(result.text, end="")
    print(f"Informe: s3://{bucket}/{result.report_text_key} y .json")
    if result.report is None:
        return 2
    print(f"Resumen: {result.report.summary()}")
    return result.report.exit_code


if __name__ == "__main__":
    sys.exit(main())
