"""Benchmark of the ward at a clock time (issue 15).

``python -m bench.bench_ward [--smoke] [--sizes 276 10000]`` prints a table and writes
``bench/results/ward.json``. For each size (the synthetic databases of :mod:`bench.bench_app`):

* census query (``core.repository.icu_census``) at random clock times: p50 / p95;
* the board at a clock time for the largest site (``components.data.ward.board_at``: census,
  raw window, the daily engine over the last 24 h, the endpoint known then): cold (empty cache)
  p50 / p95 over random times, and warm p95 (the same times again);
* an append import of a 1,000-observation batch for patients in the ICU at a clock time, until
  the board at that time shows the new data: p95 over repeats (a copy of the database).

All figures come from one run; targets are printed beside them.
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

    census_s = []
    for at in times:
        started = time.perf_counter()
        icu_census(engine, at)
        census_s.append(time.perf_counter() - started)
    out["census_p50_s"], out["census_p95_s"] = pct(census_s, 0.5), pct(census_s, 0.95)

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
    args = parser.parse_args(argv)
    sizes = [276] if args.smoke else args.sizes
    repeats, batch = (4, 50) if args.smoke else (40, 1000)
    res: dict[str, Any] = {"machine": platform.platform(), "sizes": {}}
    print(f"{'measure':<34}{'patients':>9}{'p50':>10}{'p95':>10}  target")
    for n in sizes:
        r = measure(n, repeats=repeats, batch=batch)
        res["sizes"][str(n)] = r
        rows = (
            ("census (all sites)", r["census_p50_s"], r["census_p95_s"], TARGETS["census"]),
            (
                f"board at a time, cold ({r['largest_site_patients']} pts site)",
                r["board_cold_p50_s"],
                r["board_cold_p95_s"],
                TARGETS["board cold"],
            ),
            (
                "board at a time, warm",
                float("nan"),
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
            print(f"{name:<34}{n:>9}{p50 * 1000:>8.0f}ms{p95 * 1000:>8.0f}ms  {target}")
    out = OUT.with_suffix(".smoke.json") if args.smoke else OUT
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
