"""A moved clock for the tests and the local stack they start: a development facility only.

``TEST_CLOCK=2027-12-31T23:31:00-05:00 make pytest`` runs the tests as if it were that moment:
the test process and every process of the local stack it starts (the runner with its moto, PSE
sandbox and outbox, and ``chalice local``) read a clock that began at that moment and runs at the
normal pace. The processes agree because they share one offset from the real clock,
``SV_LOCAL_CLOCK_OFFSET`` (seconds), handed down through the environment; each one applies it
with time-machine when it starts.

Only wall-clock time moves (``time.time``, ``datetime.now``...); monotonic time and sleeping stay
real, so timeouts and waits behave. Debian's libfaketime (0.9.10) was tried first: with the
monotonic clock faked, Python's timed waits (``threading.Event.wait``) never return; with it
real, ``time.sleep`` fails with EINVAL.

The deployed code never sees this: nothing under ``chalicelib/`` imports it, time-machine is a
test dependency (``requirements-dev.txt``) that the Lambda package does not contain, and
:func:`apply_from_environment` refuses any stage but ``local``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

OFFSET_ENV = "SV_LOCAL_CLOCK_OFFSET"
TEST_CLOCK_ENV = "TEST_CLOCK"
#: The offset this process runs on, once applied (a second call must not move it twice).
applied: list[float] = []


class ClockError(RuntimeError):
    """The moved clock was asked for where it must not run, or with a malformed value."""


def offset_for(moment: str) -> float:
    """Seconds from now to ``moment`` (ISO 8601 with its offset, e.g. ``2028-02-29T12:00:00-05:00``)."""
    try:
        target = datetime.fromisoformat(moment)
    except ValueError as error:
        raise ClockError(f"{TEST_CLOCK_ENV}={moment!r} is not an ISO 8601 date-time") from error
    if target.tzinfo is None:
        raise ClockError(f"{TEST_CLOCK_ENV}={moment!r} needs a UTC offset (e.g. -05:00)")
    return target.timestamp() - time.time()


def move(offset_seconds: float) -> None:
    """Move this process's wall clock by ``offset_seconds`` (it keeps ticking)."""
    import time_machine

    time_machine.travel(time.time() + offset_seconds, tick=True).start()


def apply_from_environment() -> float | None:
    """Apply ``SV_LOCAL_CLOCK_OFFSET`` to this process when it is set; the offset, or None.

    With ``TEST_CLOCK`` set and no offset yet (the test process), the offset is computed from it
    and put in the environment for the processes this one starts. Applying twice is a no-op."""
    if applied:
        return applied[0]
    if os.environ.get(TEST_CLOCK_ENV) and not os.environ.get(OFFSET_ENV):
        os.environ[OFFSET_ENV] = str(offset_for(os.environ[TEST_CLOCK_ENV]))
    raw = os.environ.get(OFFSET_ENV)
    if not raw:
        return None
    stage = os.environ.get("STAGE", "local")
    if stage != "local":
        raise ClockError(f"{OFFSET_ENV} is a local and test facility; refused in stage {stage!r}")
    try:
        offset = float(raw)
    except ValueError as error:
        raise ClockError(f"{OFFSET_ENV}={raw!r} is not a number of seconds") from error
    move(offset)
    applied.append(offset)
    return offset
