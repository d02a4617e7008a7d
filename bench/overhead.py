"""Measure 4: warm request overhead, without bcrypt, DynamoDB and the gateway.

Warm requests through ``chalice.test.Client`` (moto in process, the tests' environment, clock held
still): for each, the wall time of ``client.http.request`` minus the time spent inside DynamoDB
calls (botocore ``_make_api_call``, see :mod:`bench.trips`). The test client's own work (building
the API Gateway event, applying the stage's environment variables per request, routing) is
included, so the figure is an upper bound of the app's overhead. No bcrypt runs on these paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import env
from bench.report import Row, median, spread, within
from bench.roundtrips import World, fake_gateway
from bench.trips import DynamoRecorder

REQUESTS = 300  # measured requests per path (>= 200)
WARMUP = 30
BUDGET_S = 0.005


def run() -> tuple[list[Row], list[str]]:
    samples: dict[str, list[float]] = {}
    dynamo_share: dict[str, float] = {}
    with DynamoRecorder() as recorder, env.aws(), env.bench_clock() as clock:
        world = World(recorder, clock)
        with fake_gateway(world.gateway):
            signed = world.sign_in(world.member())
            ip = env.fresh_ip()
            paths: dict[str, Callable[[], object]] = {
                "GET / (home page, anonymous)": lambda: world.call("GET", "/", ip=ip),
                "GET /api/v1/me (signed in)": lambda: world.call("GET", "/api/v1/me",
                                                                  session=signed, ip=ip),
            }
            for name, request in paths.items():
                for _ in range(WARMUP):
                    request()
                net: list[float] = []
                inside = 0.0
                with env.frozen_heap():
                    for _ in range(REQUESTS):
                        with recorder.tally() as tally:
                            started = time.perf_counter()
                            request()
                            total = time.perf_counter() - started
                        net.append(total - tally.seconds)
                        inside += tally.seconds
                samples[name] = net
                dynamo_share[name] = inside / REQUESTS
    section = "warm request overhead"
    rows = []
    for name, net in samples.items():
        value = median(net)
        rows.append(Row(f"overhead: {name}", spread(net), f"<= {BUDGET_S * 1000:.0f} ms",
                        within(value, BUDGET_S), section=section))
        rows.append(Row(f"  {name}: DynamoDB time subtracted (mean)",
                        f"{dynamo_share[name] * 1000:.2f} ms", section=section))
    notes = [
        f"warm overhead: median of {REQUESTS} requests per path after {WARMUP} warm-up, wall "
        "time of chalice.test.Client's request minus time inside DynamoDB calls (botocore "
        "_make_api_call, moto in process); the test client's own overhead is included, so the "
        "figure is an upper bound; heap frozen before timing (gc.freeze).",
    ]
    return rows, notes
