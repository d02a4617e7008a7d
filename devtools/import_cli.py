"""``python -m devtools.import_cli members|obligations FILE``: import a core-system CSV file.

It writes to whatever the environment points at (``AWS_ENDPOINT_URL`` for a local moto server,
``TABLE_PREFIX`` for the table names; the local stage's values from ``.chalice/config.json`` are
used for what the environment does not set). Progress goes to stderr every 10,000 rows, the
summary to stdout. Exit code: 0 all rows in, 1 some rows rejected, 2 the file could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def local_stage_env(stage: str = "local") -> dict[str, str]:
    """The environment variables ``chalice local --stage <stage>`` gives the app."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text("utf-8"))
    return {**config.get("environment_variables", {}),
            **config.get("stages", {}).get(stage, {}).get("environment_variables", {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.import_cli",
                                     description="Importa asociados u obligaciones desde un CSV.")
    parser.add_argument("kind", choices=["members", "obligations"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    for name, value in local_stage_env().items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if os.environ.get("AWS_ENDPOINT_URL"):  # a local moto: any credentials will do
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

    # Imported only now: table names are fixed when the models are imported.
    from chalicelib.services.imports import import_members, import_obligations

    def progress(rows: int) -> None:
        print(f"... {rows} filas procesadas", file=sys.stderr, flush=True)

    run = import_members if args.kind == "members" else import_obligations
    try:
        with args.file.open("rb") as stream:
            report = run(stream, now=datetime.now(timezone.utc), progress=progress)
    except OSError as exc:
        print(f"No se pudo abrir {args.file}: {exc}", file=sys.stderr)
        return 2
    print(report.to_text())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
