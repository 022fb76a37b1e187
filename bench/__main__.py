"""Run the benchmark suite: ``python -m bench [--smoke]``.

Each benchmark prints a table and writes JSON to bench/results/. ``--smoke`` runs tiny sizes so
CI proves the benchmarks still run (their figures are not meaningful and go to *.smoke.json).
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = (
    "bench.bench_sofa",
    "bench.bench_app",
    "bench.bench_ward",
    "bench.bench_http",
    "bench.bench_clif",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--only", nargs="*", help="module names to run (default: all)")
    args = parser.parse_args(argv)
    for name in args.only or BENCHMARKS:
        print(f"== {name}")
        importlib.import_module(name).main(["--smoke"] if args.smoke else [])


if __name__ == "__main__":
    main()
