"""Benchmark of the ward at a clock time (issue 15).

``python -m bench.bench_ward [--smoke] [--sizes 276 10000] [--census-sizes 100000]`` prints a
table and writes ``bench/results/ward.json``. For each size (the synthetic databases of
:mod:`bench.bench_app`; ``--census-sizes``: the census only, e.g. at 100,000 patients where an
append would first copy a database of many GB):

* census query (``core.repository.icu_census``) at random clock times: p50 / p95, wall clock and
  CPU time of this process (the CPU time moves less on a busy machine);
* the board at a clock time for the largest site (``components.data.ward.board_at``: census,
  raw window, the daily engine over the last 24 h, the endpoint known then): cold (empty cache)
  p50 / p95 over random times, and warm p95 (the same times again);
* an append import of a 1,000-observation batch for patients in the ICU at a clock time, until
  the board at that time shows the new data: p95 over repeats (a copy of the database). One
  untimed append first: a server process loads pandera's validation backends once, on its first
  import (about 1 s), not on every append.

All figures come from one run; targets are printed beside them. docs/ward.md explains them.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.bench_app import RANDOMISED_FOR, RESULTS, database, pct

OUT = RESULTS.with_name("ward.json")
TARGETS = {
    "census": "<= 20 ms at 100,000",
    "board cold": "<= 300 ms (largest site)",
    "board warm p95": "<= 50 ms",
    "append to board p95": "<= 2 s at 10,000",
}


def measure_census(n: int, *, repeats: int) -> dict[str, Any]:
    """The census alone at ``repeats`` random clock times (wall clock and CPU time)."""
    from core.db import make_engine
    from core.io import build_demo_database
    from core.repository import icu_census, load_icu_stays

    url, _build = database(n)
    build_demo_database(url, n_randomised=RANDOMISED_FOR.get(n, n))
    engine = make_engine(url)
    stays = load_icu_stays(engine)
    rng = np.random.default_rng(15)
    lo, hi = stays["start"].min(), stays["stop"].max()
    times = [lo + (hi - lo) * float(x) for x in rng.uniform(0.1, 0.9, repeats)]
    icu_census(engine, times[0])  # the first connection and the statement's compilation
    wall, cpu, rows = [], [], []
    for at in times:
        started, started_cpu = time.perf_counter(), time.process_time()
        rows.append(len(icu_census(engine, at)))
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    engine.dispose()
    return {
        "patients": n,
        "stays": len(stays),
        "census_rows_median": float(np.median(rows)),
        "census_p50_s": pct(wall, 0.5),
        "census_p95_s": pct(wall, 0.95),
        "census_cpu_p50_s": pct(cpu, 0.5),
        "census_cpu_p95_s": pct(cpu, 0.95),
    }


def measure(n: int, *, repeats: int, batch: int) -> dict[str, Any]:
    from components.data.keys import Context
    from components.data.ward import board_at
    from components.server.auth import Principal, Role
    from components.server.cache import cache
    from components.server.context import bare_app
    from core.db import make_engine
    from core.io import build_demo_database, import_tables
    from core.repository import icu_census, load_icu_stays, load_patients
    from settings import Settings

    url, _build = database(n)
    # a database built before ICU stays existed gets them (a no-op otherwise)
    build_demo_database(url, n_randomised=RANDOMISED_FOR.get(n, n))
    engine = make_engine(url)
    stays = load_icu_stays(engine)
    patients = load_patients(engine)
    rng = np.random.default_rng(15)
    lo, hi = stays["start"].min(), stays["stop"].max()
    times = [lo + (hi - lo) * float(x) for x in rng.uniform(0.1, 0.9, repeats)]
    out: dict[str, Any] = {"patients": n, "stays": len(stays)}
    engine.dispose()
    out |= measure_census(n, repeats=repeats)

    site = patients.groupby("site_id").size().idxmax()
    out["largest_site"] = str(site)
    out["largest_site_patients"] = int((patients["site_id"] == site).sum())
    tmp = Path(tempfile.mkdtemp(prefix="bench-ward-"))
    settings = Settings(database_url=url, cache_dir=str(tmp / "cache"))
    nurse = Principal("bench", Role.CLINICIAN)
    cold, warm, sizes = [], [], []
    with bare_app(settings).app_context():
        cache.clear()
        ctx = Context.current(nurse)
        for at in times:
            started = time.perf_counter()
            sizes.append(len(board_at(ctx, at, site)))
            cold.append(time.perf_counter() - started)
        for at in times:
            started = time.perf_counter()
            board_at(ctx, at, site)
            warm.append(time.perf_counter() - started)
    out["board_rows_median"] = float(np.median(sizes))
    out["board_cold_p50_s"], out["board_cold_p95_s"] = pct(cold, 0.5), pct(cold, 0.95)
    out["board_warm_p50_s"] = pct(warm, 0.50)
    out["board_warm_p95_s"] = pct(warm, 0.95)
    engine.dispose()

    # append: a batch of new observations for the patients in the ICU at a time -> board
    copy = tmp / "append.sqlite"
    # SQLite's online backup: a consistent copy of a WAL database (a file copy is not)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    copy_url = f"sqlite:///{copy}"
    copy_engine = make_engine(copy_url)
    append_s = []
    with bare_app(Settings(database_url=copy_url, cache_dir=str(tmp / "c2"))).app_context():
        # warm-up, untimed: one observation (the process loads the validation backends once)
        warm_at = times[-1]
        warm_ids = icu_census(copy_engine, warm_at)["patient_id"].tolist()
        if warm_ids:
            import_tables(
                copy_engine,
                {
                    "observations": pd.DataFrame(
                        {
                            "patient_id": warm_ids[:1],
                            "time": [warm_at - pd.Timedelta(minutes=7, seconds=13)],
                            "variable": "creatinine",
                            "value": 1.23,
                            "unit": "mg/dL",
                            "source": "bench-warm-up",
                        }
                    )
                },
                user="bench",
            )
        ctx = Context.current(nurse)
        for i, at in enumerate(times[: max(3, repeats // 4)]):
            census = icu_census(copy_engine, at)
            if census.empty:
                continue
            ids = census["patient_id"].to_numpy()
            pick = rng.choice(ids, size=batch)
            minutes = rng.uniform(1, 23 * 60, size=batch)
            obs = pd.DataFrame(
                {
                    "patient_id": pick,
                    "time": [
                        at - pd.Timedelta(minutes=float(m)) - pd.Timedelta(seconds=i)
                        for m in minutes
                    ],
                    "variable": "creatinine",
                    "value": np.round(rng.uniform(0.5, 6.0, size=batch), 2),
                    "unit": "mg/dL",
                    "source": "bench",
                }
            ).drop_duplicates(["patient_id", "time", "variable"])
            board_at(ctx, at)  # the board before the import is cached
            started = time.perf_counter()
            import_tables(copy_engine, {"observations": obs}, user="bench")
            ctx = Context.current(nurse)  # the new data version
            board_at(ctx, at)
            append_s.append(time.perf_counter() - started)
    copy_engine.dispose()
    out["append_batch"] = batch
    out["append_p50_s"] = pct(append_s, 0.5) if append_s else float("nan")
    out["append_p95_s"] = pct(append_s, 0.95) if append_s else float("nan")
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sizes", nargs="*", type=int, default=[276, 10000])
    parser.add_argument(
        "--census-sizes", nargs="*", type=int, default=[], help="sizes measured for the census only"
    )
    args = parser.parse_args(argv)
    sizes = [276] if args.smoke else args.sizes
    census_sizes = [] if args.smoke else args.census_sizes
    repeats, batch = (4, 50) if args.smoke else (40, 1000)
    res: dict[str, Any] = {"machine": platform.platform(), "sizes": {}, "census_only": {}}
    print(f"{'measure':<34}{'patients':>9}{'p50':>10}{'p95':>10}  target")
    for n in census_sizes:
        r = measure_census(n, repeats=repeats)
        res["census_only"][str(n)] = r
        for name, p50, p95 in (
            ("census (all sites)", r["census_p50_s"], r["census_p95_s"]),
            ("census, CPU time", r["census_cpu_p50_s"], r["census_cpu_p95_s"]),
        ):
            print(f"{name:<34}{n:>9}{p50 * 1000:>8.1f}ms{p95 * 1000:>8.1f}ms  {TARGETS['census']}")
    for n in sizes:
        r = measure(n, repeats=repeats, batch=batch)
        res["sizes"][str(n)] = r
        rows = (
            ("census (all sites)", r["census_p50_s"], r["census_p95_s"], TARGETS["census"]),
            ("census, CPU time", r["census_cpu_p50_s"], r["census_cpu_p95_s"], TARGETS["census"]),
            (
                f"board at a time, cold ({r['largest_site_patients']} pts site)",
                r["board_cold_p50_s"],
                r["board_cold_p95_s"],
                TARGETS["board cold"],
            ),
            (
                "board at a time, warm",
                r["board_warm_p50_s"],
                r["board_warm_p95_s"],
                TARGETS["board warm p95"],
            ),
            (
                f"append {r['append_batch']} obs -> board",
                r["append_p50_s"],
                r["append_p95_s"],
                TARGETS["append to board p95"],
            ),
        )
        for name, p50, p95, target in rows:
            print(f"{name:<34}{n:>9}{p50 * 1000:>8.1f}ms{p95 * 1000:>8.1f}ms  {target}")
    out = OUT.with_suffix(".smoke.json") if args.smoke else OUT
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
