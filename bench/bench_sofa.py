"""Benchmark of the SOFA engine (issue 3).

``python -m bench.bench_sofa [--smoke]`` prints a table and writes ``bench/results/sofa.json``:

* ``score_sofa`` on 1,000,000 random patient-days (rows/s);
* the row-by-row reference scorer ``score_sofa_rowwise`` on a subsample (rows/s) and the ratio
  (target >= 100x);
* a "plain numpy pass" over the same twelve input columns (per column: the same threshold
  comparisons summed into an int8 score, no NaN handling, no pandas output) and the ratio
  (target: ``score_sofa`` within 2x, i.e. ratio >= 0.5);
* the raw-to-daily path ``derive_daily_sofa`` (unit normalisation included) on >= 10,000,000
  raw observations (obs/s; target >= 2,000,000 on one core).

Timings use ``time.perf_counter`` and report the median of a few repeats. Data are synthetic
and seeded (ids ``SYN-...``); they exercise every code path, they are not clinically realistic.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.derive import derive_daily_sofa
from core.rules import SofaRules
from core.sofa import score_sofa, score_sofa_rowwise
from core.vocab import SOFA_INPUT_COLUMNS

RESULTS = Path(__file__).parent / "results" / "sofa.json"


def random_days(n: int, seed: int = 0) -> pd.DataFrame:
    """Random patient-days with ~20 % missing values per input column."""
    rng = np.random.default_rng(seed)
    scale = {
        "pao2_fio2_mmhg": 500.0,
        "platelets_10e3_per_ul": 300.0,
        "bilirubin_mg_dl": 15.0,
        "map_mmhg": 120.0,
        "gcs_total": 15.0,
        "creatinine_mg_dl": 6.0,
        "urine_output_ml_24h": 3000.0,
    }
    data: dict[str, np.ndarray] = {}
    for col in SOFA_INPUT_COLUMNS:
        if col == "respiratory_support":
            data[col] = rng.random(n) < 0.5
            continue
        x = rng.random(n) * scale.get(col, 0.3)
        if col == "gcs_total":
            x = np.floor(x) + 3.0
            x[x > 15] = 15.0
        x[rng.random(n) < 0.2] = np.nan
        data[col] = x
    return pd.DataFrame(data)


def plain_numpy_pass(days: pd.DataFrame) -> np.ndarray:
    """Baseline: per input column, its SOFA threshold comparisons summed into int8 points."""
    breaks = {
        "pao2_fio2_mmhg": ((400.0, 300.0, 200.0, 100.0), np.less),
        "platelets_10e3_per_ul": ((150.0, 100.0, 50.0, 20.0), np.less),
        "bilirubin_mg_dl": ((1.2, 2.0, 6.0, 12.0), np.greater_equal),
        "map_mmhg": ((70.0,), np.less),
        "dopamine_mcg_kg_min": ((0.0, 5.0, 15.0), np.greater),
        "dobutamine_mcg_kg_min": ((0.0,), np.greater),
        "epinephrine_mcg_kg_min": ((0.0, 0.1), np.greater),
        "norepinephrine_mcg_kg_min": ((0.0, 0.1), np.greater),
        "gcs_total": ((15.0, 13.0, 10.0, 6.0), np.less),
        "creatinine_mg_dl": ((1.2, 2.0, 3.5, 5.0), np.greater_equal),
        "urine_output_ml_24h": ((500.0, 200.0), np.less),
    }
    total = np.zeros(len(days), dtype=np.int8)
    for col, (cuts, op) in breaks.items():
        x = days[col].to_numpy()
        pts = np.zeros(len(days), dtype=np.int8)
        for c in cuts:
            pts += op(x, c).view(np.int8)
        total += pts
    total += days["respiratory_support"].to_numpy().view(np.int8)
    return total


def synthetic_raw(
    n_patients: int, seed: int = 1, days: int = 28
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded raw long data: ~62 observations per patient-day, categorical ids and units."""
    rng = np.random.default_rng(seed)
    pids = np.array([f"SYN-S01-{i:05d}" for i in range(n_patients)], dtype=object)
    anchor = pd.Timestamp("2023-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, n_patients), unit="min"
    )
    patients = pd.DataFrame(
        {
            "patient_id": pids,
            "anchor_time": anchor,
            "weight_kg": rng.uniform(50, 120, n_patients).round(1),
            "death_time": pd.NaT,
        }
    )
    # per day: variable, count, (low, high), units with probabilities and factors to that unit
    spec = [  # (unit, probability, factor from the canonical unit, decimals as charted)
        ("map", 24, (40, 110), [("mmHg", 1.0, 1.0, 0)]),
        ("gcs_total", 6, (3, 15), [("points", 1.0, 1.0, 0)]),
        ("urine_output", 12, (0, 150), [("mL", 1.0, 1.0, 0)]),
        ("fio2", 11, (0.21, 1.0), [("fraction", 0.5, 1.0, 2), ("%", 0.5, 100.0, 0)]),
        ("pao2", 4, (45, 300), [("mmHg", 0.7, 1.0, 0), ("kPa", 0.3, 1 / 7.50062, 1)]),
        ("platelets", 1, (10, 400), [("10^9/L", 0.5, 1.0, 0), ("K/uL", 0.5, 1.0, 0)]),
        ("bilirubin", 1, (0.2, 15), [("mg/dL", 0.5, 1.0, 1), ("umol/L", 0.5, 17.1, 0)]),
        ("creatinine", 2, (0.4, 7), [("mg/dL", 0.5, 1.0, 2), ("umol/L", 0.5, 88.4, 0)]),
        ("lactate", 1, (0.5, 8), [("mmol/L", 1.0, 1.0, 1)]),
    ]
    units = sorted({u for *_, us in spec for u, *_ in us})
    variables = [s[0] for s in spec]
    parts = []
    n_pd = n_patients * days
    for vi, (var, per_day, (lo, hi), ulist) in enumerate(spec):
        m = n_pd * per_day
        pat = np.repeat(np.arange(n_patients), days * per_day)
        day = np.tile(np.repeat(np.arange(days), per_day), n_patients)
        slot = np.tile(np.arange(per_day), n_pd)
        minute = (slot + rng.random(m)) * (24 * 60 / per_day)
        t = anchor.to_numpy()[pat] + ((day * 24 * 60 + minute) * 60e9).astype("timedelta64[ns]")
        v = rng.uniform(lo, hi, m)
        if var == "gcs_total":
            v = np.floor(v)
        probs = np.array([u[1] for u in ulist])
        uidx = rng.choice(len(ulist), size=m, p=probs / probs.sum())
        factor = np.array([u[2] for u in ulist])[uidx]
        scale = (10.0 ** np.array([u[3] for u in ulist]))[uidx]
        ucode = np.array([units.index(u[0]) for u in ulist])[uidx]
        charted = np.round(v * factor * scale) / scale
        parts.append((pat, t, np.full(m, vi, dtype=np.int8), charted, ucode.astype(np.int8)))
    pat = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    order = np.lexsort((t, pat))  # a database export sorted by patient and time
    obs = pd.DataFrame(
        {
            "patient_id": pd.Categorical.from_codes(pat[order], categories=pids),
            "time": t[order],
            "variable": pd.Categorical.from_codes(
                np.concatenate([p[2] for p in parts])[order], categories=variables
            ),
            "value": np.concatenate([p[3] for p in parts])[order],
            "unit": pd.Categorical.from_codes(
                np.concatenate([p[4] for p in parts])[order], categories=units
            ),
        }
    )
    # infusions: ~8 segments per patient, 20-600 min, mcg/kg/min or mcg/min
    k = n_patients * 8
    ip = rng.integers(0, n_patients, k)
    start = anchor.to_numpy()[ip] + (rng.uniform(0, days * 24, k) * 3600e9).astype(
        "timedelta64[ns]"
    )
    dur = (rng.uniform(20, 600, k) * 60e9).astype("timedelta64[ns]")
    drug = rng.choice(["norepinephrine", "epinephrine", "dopamine", "dobutamine"], k)
    per_min = rng.random(k) < 0.5
    rate = np.where(np.isin(drug, ["dopamine", "dobutamine"]), rng.uniform(1, 20, k), 0)
    rate = np.where(rate == 0, rng.uniform(0.01, 0.5, k), rate)
    w = patients["weight_kg"].to_numpy()[ip]
    infusions = pd.DataFrame(
        {
            "patient_id": pids[ip],
            "drug": drug,
            "start": start,
            "stop": start + dur,
            "rate": np.where(per_min, rate * w, rate).round(4),
            "unit": np.where(per_min, "mcg/min", "mcg/kg/min"),
        }
    )
    # episodes: ventilation for 60 % (days 0-10), sedation within it, rrt for 10 %
    vent = rng.random(n_patients) < 0.6
    vp = np.flatnonzero(vent)
    a = anchor.to_numpy()
    h = lambda x: (x * 3600e9).astype("timedelta64[ns]")
    vs = a[vp] + h(rng.uniform(-12, 24, vp.size))
    ve = vs + h(rng.uniform(24, 240, vp.size))
    ss = vs + h(rng.uniform(1, 48, vp.size))
    se = ss + h(rng.uniform(6, 72, vp.size))
    rp = np.flatnonzero(rng.random(n_patients) < 0.1)
    rs = a[rp] + h(rng.uniform(0, 96, rp.size))
    episodes = pd.DataFrame(
        {
            "patient_id": np.concatenate([pids[vp], pids[vp], pids[rp]]),
            "kind": ["invasive_ventilation"] * vp.size + ["sedation"] * vp.size + ["rrt"] * rp.size,
            "start": np.concatenate([vs, ss, rs]),
            "stop": np.concatenate([ve, se, rs + h(rng.uniform(24, 120, rp.size))]),
        }
    )
    return obs, infusions, episodes, patients


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(*, smoke: bool) -> dict[str, object]:
    n_days = 20_000 if smoke else 1_000_000
    n_rowwise = 2_000 if smoke else 50_000
    n_patients = 60 if smoke else 6_000
    repeats = 3 if smoke else 5
    days = random_days(n_days)
    rules = SofaRules()

    t_vec = median_time(lambda: score_sofa(days, rules=rules), repeats)
    t_np = median_time(lambda: plain_numpy_pass(days), repeats)
    sub = days.iloc[:n_rowwise]
    t_row = median_time(lambda: score_sofa_rowwise(sub), 1 if not smoke else repeats)
    pd.testing.assert_frame_equal(
        score_sofa_rowwise(sub.iloc[:1000]),
        score_sofa(sub.iloc[:1000])[score_sofa_rowwise(sub.iloc[:1]).columns],
    )

    obs, infusions, episodes, patients = synthetic_raw(n_patients)
    t_raw = median_time(
        lambda: derive_daily_sofa(obs, infusions, episodes, patients, rules=rules),
        1 if not smoke else repeats,
    )
    if not smoke:  # a second and third timed run for the median
        t_raw = statistics.median(
            [t_raw]
            + [
                median_time(
                    lambda: derive_daily_sofa(obs, infusions, episodes, patients, rules=rules), 1
                )
                for _ in range(2)
            ]
        )
    result = derive_daily_sofa(obs, infusions, episodes, patients, rules=rules)

    vec_rps = n_days / t_vec
    row_rps = n_rowwise / t_row
    np_rps = n_days / t_np
    return {
        "smoke": smoke,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "score_sofa": {"rows": n_days, "seconds": t_vec, "rows_per_s": vec_rps},
        "rowwise": {"rows": n_rowwise, "seconds": t_row, "rows_per_s": row_rps},
        "plain_numpy_pass": {"rows": n_days, "seconds": t_np, "rows_per_s": np_rps},
        "ratio_vs_rowwise": vec_rps / row_rps,
        "ratio_vs_plain_numpy": vec_rps / np_rps,
        "raw_to_daily": {
            "observations": len(obs),
            "infusions": len(infusions),
            "episodes": len(episodes),
            "patient_days": len(result.daily),
            "provenance_rows": len(result.provenance),
            "seconds": t_raw,
            "obs_per_s": len(obs) / t_raw,
        },
        "targets": {
            "ratio_vs_rowwise_min": 100,
            "ratio_vs_plain_numpy_min": 0.5,
            "raw_obs_per_s_min": 2_000_000,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI (< 10 s)")
    args = parser.parse_args(argv)
    res = run(smoke=args.smoke)
    rows = [
        ("score_sofa", res["score_sofa"]["rows"], res["score_sofa"]["rows_per_s"]),
        ("row-by-row scorer", res["rowwise"]["rows"], res["rowwise"]["rows_per_s"]),
        (
            "plain numpy pass",
            res["plain_numpy_pass"]["rows"],
            res["plain_numpy_pass"]["rows_per_s"],
        ),
        (
            "raw-to-daily (obs)",
            res["raw_to_daily"]["observations"],
            res["raw_to_daily"]["obs_per_s"],
        ),
    ]
    print(f"{'benchmark':<22}{'n':>14}{'per second':>16}")
    for name, n, rate in rows:
        print(f"{name:<22}{n:>14,}{rate:>16,.0f}")
    print(f"score_sofa / row-by-row   = {res['ratio_vs_rowwise']:,.0f}x (target >= 100x)")
    print(
        f"score_sofa / plain numpy  = {res['ratio_vs_plain_numpy']:.2f} "
        "(target >= 0.5, i.e. within 2x)"
    )
    print(
        f"raw-to-daily: {res['raw_to_daily']['patient_days']:,} patient-days, "
        f"{res['raw_to_daily']['seconds']:.2f} s (target >= 2,000,000 obs/s)"
    )
    out = RESULTS.with_suffix(".smoke.json") if args.smoke else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
