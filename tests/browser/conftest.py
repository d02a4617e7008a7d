"""Real-browser tests: Playwright drives Debian's Chromium against the whole local stack.

The stack is the one `make run` starts (moto, sandbox, outbox, `chalice local`), on free ports,
with bcrypt at cost 4 so the suite stays quick. Without Chromium these tests are skipped locally,
and fail under CI=true (CI installs Chromium and must run them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.demo_dates import PLACEHOLDER
from tests.conftest import ARTIFACTS
from tests.stack_support import DATA, running_stack

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is missing at {CHROMIUM}: CI must run the browser tests "
                        "(apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def stack(chromium_path: str) -> Iterator[object]:
    with running_stack() as handle:
        yield handle


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=stack.app_url, locale="es-CO",
                                  viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.app_url)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


def due_offset(obligation_id: str) -> int:
    """Days from the run's day to the due date of ``obligation_id`` in the test data (negative:
    overdue), read from its ``{today±N}`` placeholder: expectations follow the data, not the date."""
    import csv

    with (DATA / "obligations.csv").open(encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["obligation_id"] == obligation_id:
                match = PLACEHOLDER.fullmatch(row["due_date"])
                assert match, f"{obligation_id}: due_date {row['due_date']!r} is not a placeholder"
                return int(match["days"] or 0) * (-1 if match["sign"] == "-" else 1)
    raise AssertionError(f"{obligation_id} is not in {DATA / 'obligations.csv'}")


def latest_email(stack, to: str) -> dict:  # type: ignore[no-untyped-def]
    """The newest message the outbox shows for ``to`` (read through its JSON endpoint)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{stack.outbox_url}/api/messages?to={to}", timeout=5) as response:
        messages = json.load(response)["messages"]
    assert messages, f"no email to {to} in the outbox"
    return messages[0]


def accept_terms(page) -> None:  # type: ignore[no-untyped-def]
    """Tick each of the gateway's consent documents on the summary (none for some gateways)."""
    for box in page.get_by_role("checkbox", name=re.compile("^Acepto")).all():
        box.check()
