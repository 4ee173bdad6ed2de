"""Every benchmark, one after another: ``make bench`` (or ``.venv/bin/python -m bench.run_all``).

Each benchmark prints its own figures and ratios (measured side by side in one run); those that
record write their section of bench/RESULTS.md. ``--only NAME`` runs a subset. The HTTP
benchmarks need ``wrk`` (installed with apt-get when missing and possible).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

BENCHMARKS: dict[str, list[str]] = {
    "provisioning": ["bench.provisioning"],
    "migrate": ["bench.migrate"],
    "api_read": ["bench.api_read", "--record"],
    "ingest": ["bench.ingest"],
    "dashboard": ["bench.dashboard", "--scale", "1.0"],
    "limits_overhead": ["bench.limits_overhead", "--record"],
    "noisy_neighbour": ["bench.noisy_neighbour", "--record"],
    "edge": ["bench.edge_bench"],
}
NEEDS_WRK = {"api_read", "limits_overhead", "noisy_neighbour"}


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed for the HTTP benchmarks: install it (Debian: apt-get install wrk)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    if NEEDS_WRK & set(chosen):
        ensure_wrk()
    failed = []
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", *BENCHMARKS[name]], check=False)
        print(
            f"=== {name}: {'ok' if result.returncode == 0 else 'FAILED'} in {time.perf_counter() - start:.0f} s"
        )
        if result.returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
