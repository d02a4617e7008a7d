"""The command line (``python -m devtools.infra``) and ``make package``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from devtools import packaging
from devtools.infra.cfn import dumps
from devtools.infra.iam import policy_path, policy_text
from devtools.infra.stages import ROOT, stage
from devtools.infra.tables import index_step
from devtools.infra.template import merge_template


def _log(message: str) -> None:
    print(f"[infra] {message}", file=sys.stderr, flush=True)


def package(stage_name: str, build_dir: Path, *, run_lint: bool = True) -> int:
    """``make package``: the committed policy must be current; then the merge template, and
    :func:`devtools.packaging.build` (chalice package, trimming, bytecode, cfn-lint)."""
    from chalicelib.formatting import LOCALE

    started = time.monotonic()
    stage_ = stage(stage_name)
    committed = policy_path(stage_name)
    expected = policy_text(stage_)
    if not committed.exists() or committed.read_text("utf-8") != expected:
        _log(f"{committed.relative_to(ROOT)} is missing or stale: run "
             f"`python -m devtools.infra policy --stage {stage_name} --write` and commit it")
        return 1

    build_dir.mkdir(parents=True, exist_ok=True)
    merge_path = build_dir / f"merge-{stage_name}.json"
    merge_path.write_text(dumps(merge_template(stage_name)), "utf-8")
    _log(f"wrote {merge_path} ({time.monotonic() - started:.1f} s)")
    code = packaging.build(stage_name, merge_path, build_dir / stage_name, locale=LOCALE,
                           run_lint=run_lint)
    if code == 0:
        _log(f"done in {time.monotonic() - started:.1f} s; deploy with `aws cloudformation package` "
             f"+ `aws cloudformation deploy` (README, 'Deploying to AWS')")
    return code


def main(argv: Iterable[str] | None = None) -> int:
    from devtools import infra  # the package's docstring describes the commands

    description = (infra.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m devtools.infra", description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge-template", help="print the CloudFormation merge template")
    merge.add_argument("--stage", default="dev")
    pol = commands.add_parser("policy", help="print (or --write) .chalice/policy-<stage>.json")
    pol.add_argument("--stage", default="dev")
    pol.add_argument("--write", action="store_true", help="write the file instead of printing it")
    pkg = commands.add_parser("package", help="merge template, chalice package, cfn-lint")
    pkg.add_argument("--stage", default="dev")
    pkg.add_argument("--build-dir", type=Path, default=ROOT / "build",
                     help="where merge-<stage>.json and <stage>/ go (default build/)")
    pkg.add_argument("--no-lint", action="store_true")
    step = commands.add_parser("index-step", help="print the deployed template plus one new GSI per table")
    step.add_argument("--stage", default="dev")
    step.add_argument("deployed", type=Path, help="the stack's template (aws cloudformation get-template)")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if args.command == "merge-template":
        sys.stdout.write(dumps(merge_template(args.stage)))
        return 0
    if args.command == "index-step":
        template, added, left = index_step(args.stage, json.loads(args.deployed.read_text("utf-8")))
        if not added:
            _log("no index to add: deploy the package (README, 'Deploying to AWS')")
            return 1
        sys.stdout.write(dumps(template))
        _log(f"adds {', '.join(added)}; {left} more to add after this step")
        return 0
    if args.command == "policy":
        text = policy_text(stage(args.stage))
        if args.write:
            policy_path(args.stage).write_text(text, "utf-8")
            _log(f"wrote {policy_path(args.stage).relative_to(ROOT)}")
        else:
            sys.stdout.write(text)
        return 0
    return package(args.stage, args.build_dir.resolve(), run_lint=not args.no_lint)

