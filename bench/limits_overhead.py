"""Cost of quota and rate-limit enforcement: authenticated GET req/s with enforcement on against off.

Two real `camcount serve` processes on one database, identical except ``CAMCOUNT_LIMITS_ENFORCED``;
wrk (a separate process) loads one, then the other, alternating, best of rounds. The tenant's rate
and daily quota are lifted so that nothing is refused: what is measured is the bookkeeping (rate
bucket hit + window stats, the in-memory quota lease, the RateLimit headers). ``--redis`` puts the
rate-limit buckets in Redis (shared across processes) instead of process memory.

Run: ``.venv/bin/python -m bench.limits_overhead [--redis] [--record]`` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio

from bench._limits_setup import REDIS_URL, provision, record, reset_database, serve, settings_for, wrk

DBNAME = "cc_bench_limits_overhead"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis", action="store_true", help="rate-limit storage in Redis")
    parser.add_argument("--record", action="store_true", help="write the result into bench/RESULTS.md")
    options = parser.parse_args()

    reset_database(DBNAME)
    settings = settings_for(DBNAME)
    lifted = {"requests_per_second": 10**9, "api_calls_per_day": 10**12}
    (tenant,) = asyncio.run(provision(settings, ["bench-overhead"], {"bench-overhead": lifted}))
    path = f"/t/{tenant.slug}/cameras/{tenant.camera_id}"
    on_env = {"CAMCOUNT_LIMITS_ENFORCED": "1", **({"CAMCOUNT_REDIS_URL": REDIS_URL} if options.redis else {})}
    try:
        with serve(settings, **on_env) as on, serve(settings, CAMCOUNT_LIMITS_ENFORCED="0") as off:
            for base in (on, off):  # warm-up (pools, caches)
                wrk(base + path, 2, options.connections, tenant.headers)
            on_runs, off_runs = [], []
            for _ in range(options.rounds):
                off_runs.append(wrk(off + path, options.seconds, options.connections, tenant.headers)["rps"])
                on_runs.append(wrk(on + path, options.seconds, options.connections, tenant.headers)["rps"])
    finally:
        reset_database(DBNAME)
    best_on, best_off = max(on_runs), max(off_runs)
    ratio = best_on / best_off
    storage = "Redis" if options.redis else "in process"
    print(f"enforcement off : {best_off:7.0f} req/s  (rounds {', '.join(f'{x:.0f}' for x in off_runs)})")
    print(
        f"enforcement on  : {best_on:7.0f} req/s  (rounds {', '.join(f'{x:.0f}' for x in on_runs)}; buckets {storage})"
    )
    print(f"ratio on/off    : {ratio:.2f}  (target >= 0.9)")
    if options.record:
        record(
            f"Enforcement overhead (rate buckets {storage})",
            f"`python -m bench.limits_overhead{' --redis' if options.redis else ''}`: authenticated "
            f"`GET /t/{{slug}}/cameras/{{id}}`, two `camcount serve` processes (1 worker each) on one database, "
            f"wrk 1 thread, {options.connections} connections, {options.seconds} s per run, best of "
            f"{options.rounds} alternating rounds.\n\n"
            "| enforcement | req/s |\n|---|---|\n"
            f"| off (`CAMCOUNT_LIMITS_ENFORCED=0`) | {best_off:.0f} |\n"
            f"| on (tenant + quota buckets, {storage}) | {best_on:.0f} |\n"
            f"| **ratio** (target ≥ 0.9) | **{ratio:.2f}** |\n",
        )


if __name__ == "__main__":
    main()
