"""``python -m devtools.pse_sandbox``: run the PSE sandbox in the foreground until Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from devtools.pse_sandbox.server import (
    DEFAULT_EVENTS_SECRET,
    DEFAULT_EVENTS_URL,
    DEFAULT_INTEGRITY_SECRET,
    DEFAULT_PORT,
    DEFAULT_PRIVATE_KEY,
    DEFAULT_PUBLIC_KEY,
    start_sandbox,
)


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m devtools.pse_sandbox",
                                     description="Local PSE sandbox speaking Wompi's protocol.")
    parser.add_argument("--port", type=int, default=int(env.get("SANDBOX_PORT") or DEFAULT_PORT))
    parser.add_argument("--events-url", default=env.get("SANDBOX_EVENTS_URL") or DEFAULT_EVENTS_URL,
                        help="where signed transaction.updated events are POSTed")
    parser.add_argument("--public-key", default=env.get("GATEWAY_PUBLIC_KEY") or DEFAULT_PUBLIC_KEY)
    parser.add_argument("--private-key",
                        default=env.get("GATEWAY_PRIVATE_KEY") or DEFAULT_PRIVATE_KEY)
    parser.add_argument("--events-secret",
                        default=env.get("GATEWAY_EVENTS_SECRET") or DEFAULT_EVENTS_SECRET)
    parser.add_argument("--integrity-secret",
                        default=env.get("GATEWAY_INTEGRITY_SECRET") or DEFAULT_INTEGRITY_SECRET)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    handle = start_sandbox(port=args.port, events_url=args.events_url, log_requests=True,
                           public_key=args.public_key, private_key=args.private_key,
                           events_secret=args.events_secret,
                           integrity_secret=args.integrity_secret)
    print(f"PSE sandbox on {handle.url} (GATEWAY_BASE_URL={handle.api_url}); "
          f"events to {args.events_url}. Ctrl+C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # a parent runner stops it cleanly
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
