"""The whole local stack for end-to-end tests (browser, fuzzing), as `make run` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATA = Path(__file__).resolve().parent / "browser" / "data"

#: Fast hashing, no response floor, generous per-IP limits (every test comes from 127.0.0.1),
#: and quiet due-date reminders: the runner calls the schedules every minute, and "the newest
#: email" must stay the one a test waits for, whatever day the suite runs.
TEST_ENV = {
    "BCRYPT_COST": "4", "RECOVERY_RESPONSE_FLOOR_MS": "0",
    "RATE_IDENTIFY": "500", "RATE_LOGIN": "500", "RATE_RECOVERY": "100",
    "REMINDER_DAYS_BEFORE_DUE": "-1",
}


@contextmanager
def running_stack(**overrides: str) -> Iterator[object]:
    from devtools.run_local import start_stack

    handle = start_stack(port=0, demo_dir=DATA, env_overrides={**TEST_ENV, **overrides})
    try:
        yield handle
    finally:
        handle.stop()
