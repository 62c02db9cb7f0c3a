"""How fast `bot serve` acks slash commands: Slack gives up after 3 seconds.

Starts `bot serve --no-scheduler` on loopback with SQLite and a fake Slack, then sends
2,000 signed `/campaign add` commands, 50 at a time, each adding a new person to a
campaign whose first step is a task (people are added at once, no modal). Prints the
time to the HTTP response (the ack) as p50, p99 and max, the request rate, and how
long the work after the acks (adding people, private replies) took to finish.

    python bench/ack_latency.py [--requests 2000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlmodel import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.store.db import connect  # noqa: E402
from tests.support.factories import make_campaign  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests, serving  # noqa: E402

GOAL_P99 = 0.150


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, FakeSlack() as fake:
        tmp = Path(folder)
        url = f"sqlite:///{tmp / 'bench.db'}"
        engine = connect(url)
        with Session(engine) as session:
            make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hello"}], name="Q4 outreach")
        engine.dispose()
        fake.add_user("U0REP0001", "Rita Rep", "rita@seller.example", "Europe/Stockholm")

        with serving(tmp, fake, url, "--no-scheduler") as events_url:
            slack = SlackRequests(events_url, SIGNING_SECRET, fake)
            for n in range(5):  # warm up: first request, users.info, connections
                slack.command(f'add "Q4 outreach" warmup{n}@example.com')
            fake.wait_for(lambda: len(fake.responses) >= 5, timeout=60)

            def add(n: int) -> tuple[int, float]:
                reply = slack.command(f'add "Q4 outreach" Person {n} <person{n}@example.com>')
                return reply.status, reply.seconds

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                results = list(pool.map(add, range(args.requests)))
            acked = time.perf_counter() - started
            fake.wait_for(lambda: len(fake.responses) >= 5 + args.requests, timeout=600)
            finished = time.perf_counter() - started

    statuses = {status for status, _ in results}
    seconds = [s for _, s in results]
    p50, p99 = statistics.median(seconds), percentile(seconds, 0.99)
    print(f"{args.requests} signed /campaign add requests, {args.concurrency} at a time, SQLite, loopback")
    print(f"  HTTP statuses      {sorted(statuses)}")
    print(f"  ack p50            {p50 * 1000:7.1f} ms")
    print(f"  ack p99            {p99 * 1000:7.1f} ms   (goal < {GOAL_P99 * 1000:.0f} ms: {p99 / GOAL_P99:.2f} of it)")
    print(f"  ack max            {max(seconds) * 1000:7.1f} ms   (Slack allows 3000 ms)")
    print(f"  rate               {args.requests / acked:7.0f} requests/s")
    print(f"  all replies posted {finished:7.1f} s    ({args.requests / finished:.0f} adds/s done after the ack)")
    return 0 if statuses == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
