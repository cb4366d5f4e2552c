"""Soak: concurrent phones submit for minutes while PostgreSQL is stopped and started; nothing may be lost or doubled.

Run by hand (it is not a test)::

    .venv/bin/python bench/soak.py            # 50 clients, 5 minutes, two restarts of the database
    .venv/bin/python bench/soak.py --short    # 25 s, one restart (about a minute with the set-up)

It starts a private PostgreSQL + PostGIS cluster in a temporary folder (fsync
off), loads the reference data and the approximate 2025 communes, and runs
the app as the server install does (``labour-atlas serve``), as
``bench/submit.py`` does. Then ``--clients`` clients (50) submit aspirant
records for ``--seconds`` (300), each at about ``--rate / --clients``
submissions a second, while the cluster is stopped (``pg_ctl stop -m fast``),
left down for ``--down-seconds`` and started again, ``--restarts`` times
(2), evenly spread over the run. The server is never restarted.

Each client behaves as ODK Collect and the web form do: a submission is kept
until the server acknowledges it (201 stored, 200 stored before); on 503 it
waits the ``Retry-After`` the server gives, on a lost connection or no
answer in ``--timeout`` seconds a moment, and sends the same body with the
same instance_id again. Other 5xx are counted as unexpected (and retried,
as a phone would); a 4xx other than 503/429 ends the submission (counted as
refused: the benchmark's payloads are valid, so there should be none). After
the run, clients stop making new submissions and have ``--drain`` seconds
to deliver what they still hold.

It prints: sent (distinct submissions), acknowledged, stored (records in the
database for the ids sent), duplicates (stored records beyond one per
instance_id), lost (acknowledged but not stored), still held by the clients
at the end, 5xx other than 503, 503 without Retry-After, how long after each
start the first submission was acknowledged, and p50/p95 latency of the
requests that did not overlap an outage. Goal: lost 0, duplicates 0,
unexpected 5xx 0. The last line is ``BENCH-RESULT {json}``.

Only 127.0.0.1 is contacted; every loop is bounded in time; the server and
the cluster are stopped and the folder removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# This checkout's code, for this process and the server it starts, even where another checkout is the
# installed one (the editable install of a shared virtual environment).
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
import submit  # noqa: E402 (bench/submit.py: the database, the server, the payloads and the HTTP client)

console = submit.console
SHORT = {"seconds": 25.0, "restarts": 1, "down_seconds": 5.0, "drain": 30.0}
# uvicorn closes a keep-alive connection idle for 5 s: a phone waiting out Retry-After opens a new one.
IDLE_RECONNECT = 4.0
RETRYABLE_ERRORS = (TimeoutError, OSError, submit.HttpError, asyncio.IncompleteReadError, ValueError)


@dataclass
class Outage:
    stopping: float                  # monotonic time the stop was asked for
    started: float | None = None     # when the cluster accepted connections again
    first_ack: float | None = None   # first acknowledgement after that


@dataclass
class Tally:
    sent: set[str] = field(default_factory=set)            # instance_ids sent at least once
    acknowledged: set[str] = field(default_factory=set)    # answered 201 or 200
    refused: Counter = field(default_factory=Counter)      # 4xx (not 429) by status
    statuses: Counter = field(default_factory=Counter)     # every answer, by status
    errors: Counter = field(default_factory=Counter)       # no answer, by exception name
    no_retry_after: int = 0                                # 503 answers without Retry-After
    attempts: int = 0
    timings: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each answered request
    held: int = 0                                          # submissions still unacknowledged at the end


async def client(k: int, port: int, payloads: submit.Payloads, tally: Tally, outages: list[Outage], stop_new: float,
                 give_up: float, interval: float, timeout: float, rng: random.Random) -> None:
    """One phone: make a submission, send it until acknowledged, wait, again; no new one after ``stop_new``."""
    conn = submit.Connection(port)
    last_answer = 0.0
    await asyncio.sleep(rng.uniform(0, interval))  # not all at once
    try:
        while time.monotonic() < stop_new:
            iid, body = payloads.next()
            tally.sent.add(iid)
            delivered = refused = False
            while not delivered and not refused and time.monotonic() < give_up:
                t0 = time.monotonic()
                if t0 - last_answer > IDLE_RECONNECT:  # the server has closed it by now, as HTTP clients know
                    conn.close()
                tally.attempts += 1
                try:
                    status, _ = await asyncio.wait_for(conn.request("POST", "/api/v1/submissions", body), timeout)
                except RETRYABLE_ERRORS as exc:
                    tally.errors[type(exc).__name__] += 1
                    conn.close()
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    continue
                t1 = last_answer = time.monotonic()
                tally.timings.append((t0, t1))
                tally.statuses[status] += 1
                if status in (200, 201):
                    delivered = True
                    tally.acknowledged.add(iid)
                    for o in outages:
                        if o.started is not None and o.first_ack is None and t0 >= o.started:
                            o.first_ack = t1
                elif status in (503, 429):
                    retry_after = conn.headers.get("retry-after", "")
                    if status == 503 and not retry_after.isdigit():
                        tally.no_retry_after += 1
                    wait = float(retry_after) if retry_after.isdigit() else 5.0
                    await asyncio.sleep(min(wait, 60) * rng.uniform(0.8, 1.2))  # spread, as phones are
                elif status >= 500:
                    await asyncio.sleep(rng.uniform(1, 3))  # unexpected: counted, the phone keeps the form
                else:
                    tally.refused[status] += 1  # the phone shows the error; nothing to send again
                    refused = True
            if not delivered and not refused:  # the run is over with this one still on the phone
                tally.held += 1
                break
            await asyncio.sleep(rng.expovariate(1 / interval))
    finally:
        conn.close()


async def restarts(pg, outages: list[Outage], at: list[float], down: float) -> None:
    """Stop the cluster at each of the times ``at`` (monotonic), keep it down ``down`` seconds, start it."""
    for when in at:
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        o = Outage(stopping=time.monotonic())
        outages.append(o)
        await asyncio.to_thread(pg.stop)
        console.print(f"  {o.stopping - T0[0]:6.1f} s: PostgreSQL stopped")
        await asyncio.sleep(down)
        await asyncio.to_thread(pg.start)
        o.started = time.monotonic()
        console.print(f"  {o.started - T0[0]:6.1f} s: PostgreSQL started again")


T0 = [0.0]


def stored_ids(dburl: str, ids: list[str]) -> tuple[int, set[str]]:
    """(records stored for ``ids``, the distinct ids among them)."""
    import psycopg

    with psycopg.connect(submit.plain_url(dburl), connect_timeout=10) as conn:
        rows = conn.execute("SELECT instance_id::text FROM survey_record WHERE instance_id = ANY(%s::uuid[])",
                            (ids,)).fetchall()
    return len(rows), {r[0] for r in rows}


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


async def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="labour-atlas-bench-soak-"))
    os.chmod(tmp, 0o755)  # as root the cluster runs as 'postgres', which must traverse this folder
    pg = proc = None
    try:
        t = time.perf_counter()
        with console.status("starting PostgreSQL, loading reference data, drawing the 2025 communes"):
            pg, dburl = await asyncio.to_thread(submit.start_database, tmp, [])
        console.print(f"database ready in {time.perf_counter() - t:.1f} s (private cluster, fsync off, port {pg.port})")
        proc, port, log = submit.start_server(tmp, dburl, None, None)
        try:
            await submit.wait_ready(port, proc)
        except RuntimeError:
            console.print(log.read_text(errors="replace")[-3000:], highlight=False, markup=False)
            raise
        submit.Connection.authorization = await asyncio.to_thread(submit.sign_in_surveyor, dburl, port)
        points = await asyncio.to_thread(submit.sample_points, dburl, args.seed)
        payloads = submit.Payloads(points, args.seed)
        rng = random.Random(args.seed)
        console.print(f"server ready: labour-atlas serve on http://{submit.HOST}:{port} (pid {proc.pid}); "
                      f"{args.clients} clients at about {args.rate:g} submissions/s in all for {args.seconds:g} s; "
                      f"{args.restarts} restart(s) of PostgreSQL, each down {args.down_seconds:g} s")

        tally, outages = Tally(), []
        T0[0] = start = time.monotonic()
        stop_new = start + args.seconds
        give_up = stop_new + args.drain
        at = [start + args.seconds * (i + 1) / (args.restarts + 1) for i in range(args.restarts)]
        interval = args.clients / args.rate
        tasks = [client(k, port, payloads, tally, outages, stop_new, give_up, interval, args.timeout,
                        random.Random(rng.random())) for k in range(args.clients)]
        await asyncio.gather(restarts(pg, outages, at, args.down_seconds), *tasks)
        elapsed = time.monotonic() - start

        sent = sorted(tally.sent)
        stored, ids = await asyncio.to_thread(stored_ids, dburl, sent)
        duplicates = stored - len(ids)
        lost = len(tally.acknowledged - ids)
        unexpected = sum(n for s, n in tally.statuses.items() if s >= 500 and s != 503)
        windows = [(o.stopping, o.started or float("inf")) for o in outages]
        calm = [e - s for s, e in tally.timings if not any(s < b and e > a for a, b in windows)]
        recovery = [o.first_ack - o.started for o in outages if o.first_ack is not None and o.started is not None]
        p95, p50 = percentile_ms(calm, 95), percentile_ms(calm, 50)

        table = submit.Table("figure", "value", "goal", title=f"Soak: {elapsed:.0f} s, {args.clients} clients, "
                                                                f"{len(outages)} restart(s) of PostgreSQL")
        rows = [
            ("submissions sent", f"{len(sent):,}", ""),
            ("acknowledged (201 / 200)", f"{len(tally.acknowledged):,}", ""),
            ("stored (records for the ids sent)", f"{stored:,}", ""),
            ("duplicates (records beyond one per id)", f"{duplicates:,}", "0"),
            ("lost (acknowledged, not stored)", f"{lost:,}", "0"),
            ("still held by a client at the end", f"{tally.held:,}", "0"),
            ("refused (4xx)", ", ".join(f"{k}: {v}" for k, v in sorted(tally.refused.items())) or "0", "0"),
            ("5xx other than 503", f"{unexpected:,}", "0"),
            ("503 without Retry-After", f"{tally.no_retry_after:,}", "0"),
            ("requests (with retries)", f"{tally.attempts:,}", ""),
            ("answers by status", ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.statuses.items())), ""),
            ("no answer (by error)", ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.errors.items())) or "0", ""),
            ("first acknowledgement after each start, s", ", ".join(f"{r:.1f}" for r in recovery) or "-", ""),
            ("p50 / p95 outside the outages, ms", f"{p50:.1f} / {p95:.1f}", ""),
        ]
        for row in rows:
            table.add_row(*row)
        console.print(table)
        ok = lost == 0 and duplicates == 0 and unexpected == 0 and tally.held == 0 and len(outages) == args.restarts
        console.print("goal (lost 0, duplicates 0, unexpected 5xx 0, nothing left on the clients): "
                      + ("met" if ok else "NOT met"))

        def figure(name: str, value: float, unit: str, goal: str | None = None, met: bool | None = None) -> dict:
            return {"name": name, "value": float(value), "unit": unit, "goal": goal, "met": met}

        result = {"bench": "soak", "figures": [
            figure("sent", len(sent), "submissions"),
            figure("acknowledged", len(tally.acknowledged), "submissions"),
            figure("stored", stored, "records"),
            figure("duplicates", duplicates, "records", "0", duplicates == 0),
            figure("lost", lost, "submissions", "0", lost == 0),
            figure("held at the end", tally.held, "submissions", "0", tally.held == 0),
            figure("5xx other than 503", unexpected, "answers", "0", unexpected == 0),
            figure("503 without Retry-After", tally.no_retry_after, "answers", "0", tally.no_retry_after == 0),
            figure("restarts", len(outages), "restarts"),
            figure("recovery (first ack after start, max)", max(recovery) if recovery else float("nan"), "s"),
            figure("p95 outside the outages", p95, "ms"),
        ]}
        print("BENCH-RESULT " + json.dumps(result), flush=True)
        return 0 if ok else 1
    finally:
        try:
            if proc is not None:
                submit.stop_server(proc)
        finally:
            try:
                if pg is not None:
                    pg.stop()
            finally:
                if args.keep:
                    console.print(f"kept {tmp} (server.log, pgdata/server.log)")
                else:
                    shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true",
                        help=f"a short run: {SHORT['seconds']:g} s, {SHORT['restarts']} restart down "
                             f"{SHORT['down_seconds']:g} s (about a minute in all)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=300, help="how long new submissions are made (default 300)")
    parser.add_argument("--rate", type=float, default=100, help="submissions per second of all clients together, "
                                                                 "outside outages (default 100)")
    parser.add_argument("--restarts", type=int, default=2, help="restarts of PostgreSQL during the run (default 2)")
    parser.add_argument("--down-seconds", type=float, default=10, help="how long PostgreSQL stays down each time "
                                                                        "(default 10)")
    parser.add_argument("--drain", type=float, default=60, help="seconds after the run for clients to deliver what "
                                                                 "they hold (default 60)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a client waits for an answer (default 30)")
    parser.add_argument("--seed", type=int, default=20261130, help="random seed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the logs of the server and "
                                                            "of PostgreSQL) afterwards")
    args = parser.parse_args(argv)
    if args.short:
        for name, value in SHORT.items():
            setattr(args, name, value)
    if args.clients < 1 or args.seconds <= 0 or args.rate <= 0 or args.restarts < 0 or args.down_seconds < 0 \
            or args.drain < 0 or args.timeout <= 0:
        parser.error("--clients, --seconds, --rate and --timeout must be positive; --restarts, --down-seconds "
                     "and --drain not negative")
    if args.restarts and args.down_seconds * args.restarts >= args.seconds:
        parser.error("the outages would fill the whole run: fewer --restarts, shorter --down-seconds or more --seconds")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
