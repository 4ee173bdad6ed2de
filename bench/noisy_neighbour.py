"""Noisy neighbour: p99 latency of tenant B while tenant A floods, against B alone.

One real `camcount serve` (one worker, enforcement on). B reads a camera at a steady
``--b-rate`` (400 requests per second, wrk with 4 paced connections): its normal traffic, with
spare capacity, as a tenant sees it (at 100 per second the server is nearly idle and B's p99 is
mostly noise). A floods the same endpoint of its own tenant at ``--flood-rate`` requests per second,
20 times its plan rate by default, from a second wrk (open loop, paced by a Lua ``delay``), so
nearly all of A's requests are refused with 429. Rounds alternate "B alone" and "B with A"; the
ratio is of the median p99s. ``--closed-flood`` instead floods as fast as the server answers (wrk
with 32 connections and no pacing): that measures the machine's capacity more than fairness.

Run: ``.venv/bin/python -m bench.noisy_neighbour [--redis] [--record]`` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench._limits_setup import REDIS_URL, provision, record, reset_database, serve, settings_for, wrk

DBNAME = "cc_bench_noisy"
A_RATE = 50  # the standard plan's requests per second


def _paced(rate: int, connections: int) -> list[str]:
    """wrk arguments that pace each connection so that all together send about ``rate`` per second."""
    script = Path(tempfile.mkdtemp()) / "pace.lua"
    script.write_text(f"function delay() return {int(1000 * connections / rate)} end\n")
    return ["-s", str(script)]


def _b_run(url: str, headers: dict[str, str], seconds: int, rate: int) -> float:
    """B's p99 in ms at about ``rate`` requests per second (4 paced connections)."""
    args = ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", *_paced(rate, 4)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"tenant B got errors:\n{out}")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "99%":
            p99: float = float(parts[1].rstrip("usm"))
            scale: float = {"us": 0.001, "ms": 1.0, "s": 1000.0}[parts[1].lstrip("0123456789.")]
            return p99 * scale
    raise SystemExit(out)


def _flood(
    url: str, headers: dict[str, str], seconds: int, rate: int, closed: bool
) -> subprocess.Popen[bytes]:
    connections = 32 if closed else 20
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if not closed:
        args += _paced(rate, connections)
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    # Niced: on this 2-core machine the flood's own client would otherwise take CPU from the server,
    # which a real flood (from the tenant's machines) does not.
    return subprocess.Popen(
        ["nice", "-n", "19", *args, url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flood-rate", type=int, default=20 * A_RATE)
    parser.add_argument("--b-rate", type=int, default=400, help="tenant B's steady requests per second")
    parser.add_argument("--closed-flood", action="store_true")
    parser.add_argument("--redis", action="store_true", help="rate-limit storage in Redis")
    parser.add_argument("--record", action="store_true")
    options = parser.parse_args()

    reset_database(DBNAME)
    settings = settings_for(DBNAME)
    lifted = {"requests_per_second": 10**6, "api_calls_per_day": 10**12}
    a, b = asyncio.run(provision(settings, ["noisy-a", "quiet-b"], {"noisy-a": {"api_calls_per_day": 10**12},
                                                                    "quiet-b": lifted}))  # fmt: skip
    env = {"CAMCOUNT_LIMITS_ENFORCED": "1", **({"CAMCOUNT_REDIS_URL": REDIS_URL} if options.redis else {})}
    alone, noisy, flood_rps, flood_refused, flood_admitted = [], [], [], [], []
    try:
        with serve(settings, **env) as base:
            url_a = f"{base}/t/{a.slug}/cameras/{a.camera_id}"
            url_b = f"{base}/t/{b.slug}/cameras/{b.camera_id}"
            wrk(url_b, 2, 4, b.headers)  # warm-up
            for _ in range(options.rounds):
                alone.append(_b_run(url_b, b.headers, options.seconds, options.b_rate))
                flood = _flood(
                    url_a, a.headers, options.seconds + 2, options.flood_rate, options.closed_flood
                )
                noisy.append(_b_run(url_b, b.headers, options.seconds, options.b_rate))
                out = flood.communicate(timeout=60)[0].decode()
                sent, refused, seconds = 0.0, 0.0, float(options.seconds + 2)
                for line in out.splitlines():
                    if line.startswith("Requests/sec:"):
                        flood_rps.append(float(line.split()[1]))
                    if "Non-2xx" in line:
                        refused = float(line.split()[-1])
                    if " requests in " in line:  # "  1708 requests in 8.00s, 1.2MB read"
                        sent, seconds = float(line.split()[0]), float(line.split()[3].rstrip("s,"))
                flood_refused.append(refused)
                flood_admitted.append((sent - refused) / seconds)
    finally:
        reset_database(DBNAME)
    p99_alone, p99_noisy = statistics.median(alone), statistics.median(noisy)
    ratio = p99_noisy / p99_alone
    # Each "with A" round follows its "alone" round; the median of those pairs' ratios is less moved
    # by the slow drift of the machine between rounds than the ratio of the two medians.
    paired = statistics.median(n / a for a, n in zip(alone, noisy, strict=True))
    mode = (
        "closed loop, 32 connections" if options.closed_flood else f"open loop, ~{options.flood_rate} req/s"
    )
    storage = "Redis" if options.redis else "in process"
    print(f"B alone      p99: {p99_alone:6.2f} ms  (rounds {', '.join(f'{x:.2f}' for x in alone)})")
    print(f"B with flood p99: {p99_noisy:6.2f} ms  (rounds {', '.join(f'{x:.2f}' for x in noisy)})")
    print(f"A's flood ({mode}): {', '.join(f'{x:.0f}' for x in flood_rps)} req/s sent, "
          f"{sum(flood_refused):.0f} refused with 429 in all; admitted "
          f"{', '.join(f'{x:.0f}' for x in flood_admitted)} req/s (its plan: {A_RATE})")  # fmt: skip
    print(
        f"ratio            : {ratio:.2f}  (target <= 1.2); median of the paired rounds' ratios: {paired:.2f}"
    )
    if options.record:
        record(
            f"Noisy neighbour (flood {'closed loop' if options.closed_flood else 'open loop'}, buckets {storage})",
            f"`python -m bench.noisy_neighbour{' --closed-flood' if options.closed_flood else ''}"
            f"{' --redis' if options.redis else ''}`: one `camcount serve` (1 worker); tenant B reads a camera "
            f"at ~{options.b_rate} req/s (wrk, 4 paced connections); tenant A (limit {A_RATE} req/s) floods ({mode}); {options.rounds} "
            f"alternating rounds of {options.seconds} s, median p99.\n\n"
            "| tenant B | p99 latency |\n|---|---|\n"
            f"| alone | {p99_alone:.2f} ms |\n| while A floods | {p99_noisy:.2f} ms |\n"
            f"| **ratio** (target ≤ 1.2) | **{ratio:.2f}** |\n"
            f"| median of the {options.rounds} paired rounds' ratios | {paired:.2f} |\n\n"
            f"A sent {statistics.median(flood_rps) if flood_rps else 0:.0f} req/s (median); "
            f"{statistics.median(flood_admitted) if flood_admitted else 0:.0f} req/s of them were admitted "
            f"(its plan: {A_RATE}), the rest refused with 429.\n",
        )


if __name__ == "__main__":
    main()
