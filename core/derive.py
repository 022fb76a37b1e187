"""Raw long observations -> study days -> daily SOFA with provenance.

Pipeline (every step vectorised: integer patient codes, one stable sort per variable,
``np.minimum.reduceat`` / ``searchsorted`` asof joins; never a per-patient Python loop):

1. :func:`core.units.normalize_observations` / :func:`core.units.normalize_infusions` unless
   the frames are already normalised (they then carry ``value_as_received`` /
   ``rate_mcg_kg_min``).
2. :func:`assign_study_day`: day n = [anchor + (n-1)*24 h, anchor + n*24 h) with the anchor =
   first study-drug dose (clinical.md "Decisions", ``study_day = rolling_24h_from_first_dose``);
   ``calendar_date`` counts calendar dates from the anchor date. Observations before the anchor
   (day < 1) or after ``rules.max_study_day`` are ignored (a FiO2 charted before the anchor can
   still be matched to a PaO2 after it; a GCS before the anchor can still be the pre-sedation
   GCS).
3. Worst value per organ and day (clinical.md 2.8; SRC-VINCENT, SRC-MDCALC): min platelets,
   MAP, GCS; max bilirubin, creatinine; P/F from :func:`match_pao2_fio2` (FiO2 charted up to
   ``rules.fio2_match_window_hours`` before the PaO2, SRC-MIMIC ``bg.sql``), the deciding P/F
   being the one with the highest respiration score given support *at that time*;
   :func:`daily_urine`; :func:`qualifying_infusions` (``vaso60``, SRC-RICU);
   :func:`gcs_under_sedation` (SRC-MIMIC ``gcs.sql``, SRC-RICU).
4. :func:`core.sofa.score_sofa`, then :func:`fill_trajectory` (day 1 missing -> 0, later LOCF;
   SOFA-2 footnote b, SRC-SOFA2; ImmunoSep SAP LOCF, SRC-AUDIT), every filled value flagged.
5. Provenance: for every patient-day and organ the deciding raw value as received, its unit,
   time and source, and a rule text such as ``"creatinine 3.7 mg/dL >= 3.5 -> 3"``.

Rows are produced for study days 1..D per patient, D = min(``rules.max_study_day``, last study
day with a SOFA observation or a qualifying vasopressor infusion, study day of death).
Patients without any such data get no rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from core import sofa as _sofa
from core.exceptions import DataValidationError, Problem
from core.rules import SofaRules
from core.sofa import score_respiration, score_sofa
from core.sofa2 import score_sofa2
from core.time import (
    NS_PER_HOUR,
    NS_PER_MIN,
    NS_PER_MS,
    as_ns,
    day_start_ns,
    study_day_ns,
)
from core.units import (
    CANONICAL_UNITS,
    SCORED_DRUGS,
    normalize_infusions,
    normalize_observations,
)
from core.vocab import SOFA_COLUMNS, SOFA_INPUT_COLUMNS, SOFA_TOTAL, Organ

#: 15 = normal GCS assumed when no GCS before sedation is known (SRC-MIMIC gcs.sql, SRC-RICU)
GCS_NORMAL: Final = 15.0
#: episode kinds counted as respiratory support, per ``SofaRules.respiratory_support``
SUPPORT_KINDS: Final = {
    "invasive_or_noninvasive_incl_cpap": (
        "invasive_ventilation",
        "noninvasive_ventilation",
        "cpap",
    ),
    "invasive_only": ("invasive_ventilation",),
}
SOFA_OBS_VARIABLES: Final = (
    "pao2",
    "fio2",
    "platelets",
    "bilirubin",
    "creatinine",
    "map",
    "gcs_total",
    "urine_output",
)
_DRUG_COLUMN: Final = {d: f"{d}_mcg_kg_min" for d in SCORED_DRUGS}


@dataclass(frozen=True)
class DailySofa:
    """Daily SOFA trajectory and its provenance (docs/architecture.md "Engine API").

    Attributes
    ----------
    daily
        One row per ``patient_id`` x ``study_day``: the score_sofa inputs, ``rrt``, the six
        ``sofa_<organ>`` components after the missing-component policy, ``sofa_total``,
        ``<organ>_imputed`` (bool), ``<organ>_imputation`` (None | 'day1_zero' | 'locf' |
        'zero'), ``n_components_observed`` and ``sofa2_total`` (display only, SRC-SOFA2).
    provenance
        Long: ``patient_id, study_day, organ, score, variable, value, unit, time, source, rule,
        imputed, imputation``; ``value`` / ``unit`` as received.
    """

    daily: pd.DataFrame
    provenance: pd.DataFrame


# --- small vectorised building blocks --------------------------------------------------------


def assign_study_day(times: object, anchors: object, rules: SofaRules = SofaRules()) -> np.ndarray:
    """Study day of each time (int64; < 1 before the anchor): :func:`core.time.study_day_ns`
    on datetime arrays without NaT (the one day rule, docs/clinical.md 1.5)."""
    return study_day_ns(_ns(times), _ns(anchors), rules)


_ns = as_ns
_day_start_ns = day_start_ns


def _group_starts(sorted_key: np.ndarray) -> np.ndarray:
    if sorted_key.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])


def daily_worst_values(
    key: np.ndarray, value: np.ndarray, *, how: str, presorted: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worst value per group and the position of the (first) row that attains it.

    Parameters
    ----------
    key
        int64 group key per row (e.g. ``patient_code * (max_day + 1) + study_day``).
    value
        float values, no NaN.
    how
        ``"min"`` or ``"max"``.
    presorted
        ``key`` is already ascending (ties then resolve to the first row in the given order,
        which is the earliest when rows are time-sorted).

    Returns
    -------
    (unique keys, worst values, positions into ``key``/``value``)
    """
    if how not in ("min", "max"):
        raise ValueError(f"how must be 'min' or 'max', got {how!r}")
    order = np.arange(key.size) if presorted else np.argsort(key, kind="stable")
    k = key[order]
    v = value[order]
    starts = _group_starts(k)
    if starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), empty
    reducer = np.minimum if how == "min" else np.maximum
    worst = reducer.reduceat(v, starts)
    counts = np.diff(np.r_[starts, k.size])
    hit = np.flatnonzero(v == np.repeat(worst, counts))
    gid = np.searchsorted(starts, hit, side="right") - 1
    first = hit[np.r_[True, gid[1:] != gid[:-1]]]
    return k[starts], worst, order[first]


class _Clock:
    """Composite (patient code, time) keys at millisecond resolution for asof joins."""

    def __init__(self, *times_ns: np.ndarray, n_patients: int):
        valid = [t[t != np.iinfo(np.int64).min] for t in times_ns if t.size]
        self.t0 = min((int(t.min()) for t in valid if t.size), default=0)
        t1 = max((int(t.max()) for t in valid if t.size), default=0)
        self.span = (t1 - self.t0) // NS_PER_MS + 2
        if self.span * max(n_patients, 1) >= 2**62:
            raise ValueError("time span x patients too large for millisecond composite keys")

    def key(self, pcode: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        return pcode.astype(np.int64) * self.span + (t_ns - self.t0) // NS_PER_MS


def _merge_intervals(
    pcode: np.ndarray, start: np.ndarray, stop: np.ndarray, *, gap_ns: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge intervals of a patient that overlap or lie less than ``gap_ns`` apart.

    Returns the merged (pcode, start, stop) sorted by (pcode, start), and for every input
    row the index of its merged interval.
    """
    if pcode.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, e
    order = np.lexsort((start, pcode))
    p, s, e = pcode[order], start[order], stop[order]
    run_max = pd.Series(e).groupby(p, sort=False).cummax().to_numpy()
    prev_max = np.r_[s[:1], run_max[:-1]]
    pchange = np.r_[True, p[1:] != p[:-1]]
    gap_from_prev = np.where(pchange, 0, s - np.where(pchange, s, prev_max))
    # a new interval starts at a new patient or once the gap reaches gap_ns (touching merges)
    new = pchange | (gap_from_prev >= gap_ns if gap_ns > 0 else gap_from_prev > 0)
    run = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    m_stop = np.maximum.reduceat(e, starts)
    member = np.empty(pcode.size, dtype=np.int64)
    member[order] = run
    return p[starts], s[starts], m_stop, member


def _locate(
    clock: _Clock,
    pcode: np.ndarray,
    t_ns: np.ndarray,
    ep_pcode: np.ndarray,
    ep_start: np.ndarray,
    ep_stop: np.ndarray,
) -> np.ndarray:
    """Index of the merged (non-overlapping) interval containing each time, -1 if none."""
    if ep_pcode.size == 0 or pcode.size == 0:
        return np.full(pcode.size, -1, dtype=np.int64)
    j = np.searchsorted(clock.key(ep_pcode, ep_start), clock.key(pcode, t_ns), side="right") - 1
    jj = np.maximum(j, 0)
    ok = (j >= 0) & (ep_pcode[jj] == pcode) & (t_ns >= ep_start[jj]) & (t_ns < ep_stop[jj])
    return np.where(ok, j, -1)


def _expand_over_days(
    anchor_ns: np.ndarray, start_ns: np.ndarray, stop_ns: np.ndarray, rules: SofaRules
) -> tuple[np.ndarray, np.ndarray]:
    """(row index, study day) for every study day 1..max_study_day an interval overlaps."""
    first = assign_study_day(start_ns, anchor_ns, rules)
    last = assign_study_day(np.maximum(stop_ns - 1, start_ns), anchor_ns, rules)
    first = np.maximum(first, 1)
    last = np.minimum(last, rules.max_study_day)
    n = np.maximum(last - first + 1, 0)
    rows = np.repeat(np.arange(n.size), n)
    offsets = np.cumsum(n) - n
    day = first[rows] + (np.arange(rows.size) - offsets[rows])
    return rows, day


def match_pao2_fio2(
    pao2_pcode: np.ndarray,
    pao2_time: np.ndarray,
    fio2_pcode: np.ndarray,
    fio2_time: np.ndarray,
    *,
    window_hours: float,
) -> np.ndarray:
    """For each PaO2, the index of the last FiO2 charted at or up to ``window_hours`` before it.

    An asof-backward join by patient (as ``pandas.merge_asof(direction="backward",
    tolerance=window)``), implemented with ``searchsorted`` on (patient, time) keys at
    millisecond resolution. SRC-MIMIC ``bg.sql``: charted FiO2 within 4 h before the gas.

    Returns
    -------
    int64 array, index into the FiO2 arrays, -1 where no FiO2 is in the window.
    """
    n_pat = int(max(pao2_pcode.max(initial=0), fio2_pcode.max(initial=0))) + 1
    clock = _Clock(_ns(pao2_time), _ns(fio2_time), n_patients=n_pat)
    ft = _ns(fio2_time)
    fkey = clock.key(fio2_pcode, ft)
    order = np.argsort(fkey, kind="stable")
    pt = _ns(pao2_time)
    j = np.searchsorted(fkey[order], clock.key(pao2_pcode, pt), side="right") - 1
    jj = order[np.maximum(j, 0)] if order.size else np.zeros_like(j)
    if order.size == 0:
        return np.full(pao2_pcode.size, -1, dtype=np.int64)
    window = round(window_hours * NS_PER_HOUR)
    ok = (j >= 0) & (fio2_pcode[jj] == pao2_pcode) & (pt - ft[jj] <= window) & (pt >= ft[jj])
    return np.where(ok, jj, -1)


def qualifying_infusions(
    pcode: np.ndarray,
    drug_code: np.ndarray,
    start_ns: np.ndarray,
    stop_ns: np.ndarray,
    *,
    rules: SofaRules = SofaRules(),
) -> tuple[np.ndarray, np.ndarray]:
    """Which infusion segments belong to a run long enough to count (SRC-RICU ``vaso60``).

    Segments of the same patient and drug less than ``rules.vasopressor_merge_gap_minutes``
    apart (or overlapping) are merged into runs; a run counts if it lasts at least
    ``rules.vasopressor_min_minutes`` when ``rules.require_vasopressor_60min`` (SRC-VINCENT
    "for at least 1 h"). Pass only segments with a rate > 0 (a zero rate is not an infusion).

    Returns
    -------
    (qualifies: bool per segment, run_minutes: float per segment)
    """
    gap = round(rules.vasopressor_merge_gap_minutes * NS_PER_MIN)
    group = pcode.astype(np.int64) * 16 + drug_code
    _, r_start, r_stop, member = _merge_intervals(group, start_ns, stop_ns, gap_ns=gap)
    minutes = (r_stop - r_start)[member] / NS_PER_MIN if member.size else np.zeros(0)
    if not rules.require_vasopressor_60min:
        return np.ones(pcode.size, dtype=bool), minutes
    return minutes >= rules.vasopressor_min_minutes, minutes


def daily_urine(
    key: np.ndarray,
    volume_ml: np.ndarray,
    time_ns: np.ndarray,
    day_start_ns: np.ndarray,
    *,
    min_observed_hours: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Urine output per study day, scaled to 24 h when enough of the day was observed.

    Definition (documented choice): a charted volume is the urine collected since the previous
    charting, so the day is observed from its start up to its **last** charting:
    ``observed_hours = last charting time - start of the study day``. If
    ``observed_hours >= min_observed_hours`` (SRC-RICU ``urine24``: 12 h) the day's sum is
    scaled to ``sum * 24 / observed_hours``; otherwise the value is **missing** (never 0).

    Parameters
    ----------
    key
        Group key per charting (patient-day), rows in time order within a key.
    volume_ml, time_ns, day_start_ns
        Volume (mL), charting time and start of that row's study day (int64 ns).

    Returns
    -------
    (keys, urine_ml_24h (NaN if too short), summed_ml, observed_hours, position of last row)
    """
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = _group_starts(k)
    if starts.size == 0:
        e = np.zeros(0)
        return np.zeros(0, dtype=np.int64), e, e, e, np.zeros(0, dtype=np.int64)
    total = np.add.reduceat(volume_ml[order], starts)
    last_t = np.maximum.reduceat(time_ns[order], starts)
    ends = np.r_[starts[1:], k.size] - 1
    observed_h = (last_t - day_start_ns[order][starts]) / NS_PER_HOUR
    scaled = np.where(
        observed_h >= min_observed_hours, total * 24.0 / np.maximum(observed_h, 1e-9), np.nan
    )
    return k[starts], scaled, total, observed_h, order[ends]


def gcs_under_sedation(
    pcode: np.ndarray,
    time_ns: np.ndarray,
    gcs: np.ndarray,
    sed_pcode: np.ndarray,
    sed_start: np.ndarray,
    sed_stop: np.ndarray,
    *,
    rules: SofaRules = SofaRules(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GCS to score when charted during sedation (clinical.md 2.4, ``gcs_sedated``).

    ``pre_sedation_or_15``: a GCS charted during a sedation episode is replaced by the last GCS
    charted before that episode started (itself resolved the same way), or 15 if none
    (SAPS II via SRC-MIMIC ``gcs.sql``; SRC-RICU ``sed_impute``). ``raw``: unchanged.

    Returns
    -------
    (effective GCS, sedated: bool, source row index of the substituted GCS or -1 for 15)
    """
    n = pcode.size
    source = np.arange(n)
    if rules.gcs_sedated == "raw" or n == 0:
        return gcs.astype(np.float64), np.zeros(n, dtype=bool), source
    n_pat = int(max(pcode.max(initial=0), sed_pcode.max(initial=0))) + 1
    clock = _Clock(time_ns, sed_start, sed_stop, n_patients=n_pat)
    ep_p, ep_s, ep_e, _ = _merge_intervals(sed_pcode, sed_start, sed_stop)
    ep = _locate(clock, pcode, time_ns, ep_p, ep_s, ep_e)
    sedated = ep >= 0
    gkey = clock.key(pcode, time_ns)
    order = np.argsort(gkey, kind="stable")
    epj = np.maximum(ep, 0)
    j = np.searchsorted(gkey[order], clock.key(pcode, ep_s[epj]) if ep_s.size else gkey, "left")
    j -= 1
    prev = np.where(j >= 0, order[np.maximum(j, 0)], -1)
    prev = np.where((prev >= 0) & (pcode[np.maximum(prev, 0)] == pcode), prev, -1)
    ptr = np.where(sedated, prev, source)
    for _ in range(64):  # pointer jumping: a previous GCS may itself be sedated
        nxt = np.where((ptr >= 0) & sedated[np.maximum(ptr, 0)], _ptr_of(ptr, prev), ptr)
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    effective = np.where(ptr >= 0, gcs[np.maximum(ptr, 0)], GCS_NORMAL)
    return effective.astype(np.float64), sedated, ptr


def _ptr_of(ptr: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """``prev[ptr]`` with -1 kept (helper of :func:`gcs_under_sedation`)."""
    return np.where(ptr >= 0, prev[np.maximum(ptr, 0)], -1)


def fill_trajectory(scored: pd.DataFrame, *, rules: SofaRules = SofaRules()) -> pd.DataFrame:
    """Apply the missing-component policy to daily components and recompute the total.

    Parameters
    ----------
    scored
        ``patient_id, study_day`` and the six ``sofa_<organ>`` columns (``Int8``, ``<NA>`` =
        not observed), e.g. from :func:`core.sofa.score_sofa`.
    rules
        ``rules.missing_component``: ``zero_day1_then_locf`` (default; study day 1 missing ->
        0, flagged ``'day1_zero'``; later days -> last observation carried forward within the
        patient, flagged ``'locf'``; SOFA-2 footnote b, SRC-SOFA2; ImmunoSep SAP, SRC-AUDIT),
        ``zero`` (every missing -> 0, flagged ``'zero'``) or ``nan`` (no filling).
        ``rules.missing_total`` applies to the recomputed ``sofa_total``.

    Returns
    -------
    DataFrame
        A sorted copy with filled components, ``sofa_total``, ``<organ>_imputed`` (bool),
        ``<organ>_imputation`` (object: None or the kind) and ``n_components_observed``.
    """
    out = scored.sort_values(["patient_id", "study_day"], kind="stable").copy()
    pid = out["patient_id"]
    day1 = (out["study_day"] == 1).to_numpy()
    n_obs = np.zeros(len(out), dtype=np.int8)
    totals = np.zeros(len(out), dtype=np.int64)
    total_missing = np.zeros(len(out), dtype=bool)
    for organ in Organ:
        col = SOFA_COLUMNS[organ]
        raw = out[col].astype("Int8")
        miss = raw.isna().to_numpy()
        n_obs += (~miss).astype(np.int8)
        kind = np.full(len(out), None, dtype=object)
        if rules.missing_component == "nan":
            filled = raw
        elif rules.missing_component == "zero":
            filled = raw.fillna(0)
            kind[miss] = "zero"
        else:
            seeded = raw.mask(pd.Series(miss & day1, index=out.index), 0)
            filled = seeded.groupby(pid, sort=False).ffill().astype("Int8")
            kind[miss & day1] = "day1_zero"
            kind[miss & ~day1 & filled.notna().to_numpy()] = "locf"
        out[col] = filled.astype("Int8")
        out[f"{organ.value}_imputed"] = pd.notna(kind)
        out[f"{organ.value}_imputation"] = kind
        vals = filled.to_numpy(dtype=np.float64, na_value=np.nan)
        totals += np.nan_to_num(vals, nan=0.0).astype(np.int64)
        total_missing |= np.isnan(vals)
    if rules.missing_total != "nan_if_any_missing":
        total_missing[:] = False
    out[SOFA_TOTAL] = pd.arrays.IntegerArray(totals.astype(np.int8), total_missing)
    out["n_components_observed"] = n_obs
    return out


# --- the full path ----------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{round(float(x), 2):g}"


def _codes(values: pd.Series, categories: pd.Index) -> np.ndarray:
    return pd.Categorical(values, categories=categories).codes.astype(np.int64)


def _prepare_patients(patients: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    problems = [
        Problem("patients", None, c, None, "a column of this name")
        for c in ("patient_id", "anchor_time")
        if c not in patients
    ]
    if problems:
        raise DataValidationError(problems)
    pids = pd.Index(patients["patient_id"].astype(str))
    anchor = pd.to_datetime(patients["anchor_time"], errors="coerce")
    bad = np.flatnonzero(anchor.isna().to_numpy() | pids.duplicated())
    if bad.size:
        raise DataValidationError(
            Problem(
                "patients",
                int(i) + 1,
                "anchor_time",
                patients["anchor_time"].iloc[i],
                "a unique patient_id with a first-dose date-time",
                patient_id=str(pids[i]),
            )
            for i in bad
        )
    death = (
        pd.to_datetime(patients["death_time"], errors="coerce")
        if "death_time" in patients
        else pd.Series(pd.NaT, index=patients.index, dtype="datetime64[ns]")
    )
    return pids, _ns(anchor), _ns(death)


def _unknown_patients(frame: pd.DataFrame, codes: np.ndarray, where: str, tcol: str) -> None:
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        ids = frame["patient_id"].to_numpy()[bad]
        _, first = np.unique(ids.astype(str), return_index=True)
        raise DataValidationError(
            Problem(
                where,
                int(bad[i]) + 1,
                "patient_id",
                ids[i],
                "a patient_id present in patients",
                patient_id=str(ids[i]),
                time=str(frame[tcol].iloc[bad[i]]),
            )
            for i in first
        )


def derive_daily_sofa(
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    rules: SofaRules = SofaRules(),
) -> DailySofa:
    """Derive daily classic SOFA (plus SOFA-2 total) with provenance from raw long data.

    Parameters
    ----------
    observations
        ``patient_id, time, variable, value, unit[, source]`` (docs/architecture.md), raw or
        already normalised by :func:`core.units.normalize_observations`.
    infusions
        ``patient_id, drug, start, stop, rate, unit`` (raw or normalised).
    episodes
        ``patient_id, kind, start, stop``; kinds ``invasive_ventilation``,
        ``noninvasive_ventilation``, ``cpap``, ``oxygen`` (not support), ``sedation``, ``rrt``.
    patients
        ``patient_id, anchor_time, weight_kg[, death_time]``.
    rules
        :class:`core.rules.SofaRules` (all flags of clinical.md 2.8).

    Returns
    -------
    DailySofa

    Raises
    ------
    DataValidationError
        Unit / plausibility problems (all at once), unknown patient ids, missing anchors.

    Notes
    -----
    Units: canonical units of :mod:`core.units`. Missing data: a day without any input of an
    organ leaves the component missing before :func:`fill_trajectory`; urine output observed
    for less than ``rules.urine_min_observed_hours`` is missing, not 0; vasopressor rates are
    NaN on days without a qualifying infusion.
    """
    pids, anchor_all, death_all = _prepare_patients(patients)
    n_pat = len(pids)
    obs = (
        observations
        if "value_as_received" in observations
        else normalize_observations(observations)
    )
    inf = infusions if "rate_mcg_kg_min" in infusions else normalize_infusions(infusions, patients)

    o_p = _codes(obs["patient_id"], pids)
    _unknown_patients(obs, o_p, "observations", "time")
    o_t = _ns(obs["time"])
    o_v = obs["value"].to_numpy(dtype=np.float64)
    o_var = _codes(obs["variable"], pd.Index(SOFA_OBS_VARIABLES))
    o_anchor = anchor_all[o_p]
    o_day = assign_study_day(o_t, o_anchor, rules)
    max_day = rules.max_study_day
    in_window = (o_day >= 1) & (o_day <= max_day)
    span_days = max_day + 1

    ep = episodes
    e_p = _codes(ep["patient_id"], pids) if len(ep) else np.zeros(0, dtype=np.int64)
    if len(ep):
        _unknown_patients(ep, e_p, "episodes", "start")
    e_kind = ep["kind"].astype(str).to_numpy() if len(ep) else np.zeros(0, dtype=object)
    e_s = _ns(ep["start"]) if len(ep) else np.zeros(0, dtype=np.int64)
    e_e = _ns(ep["stop"]) if len(ep) else np.zeros(0, dtype=np.int64)

    clock = _Clock(o_t, e_s, e_e, anchor_all, n_patients=n_pat)
    daykey = o_p * span_days + o_day

    # per-variable subsets, sorted by (patient, time) so ties resolve to the earliest row
    def subset(var: str, *, window_only: bool = True) -> np.ndarray:
        mask = o_var == SOFA_OBS_VARIABLES.index(var)
        if window_only:
            mask &= in_window
        idx = np.flatnonzero(mask)
        return idx[np.argsort(clock.key(o_p[idx], o_t[idx]), kind="stable")]

    # results per grid key: dict organ-input -> (keys, values, positions into obs)
    worst: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for var, how in (("platelets", "min"), ("bilirubin", "max"), ("creatinine", "max")):
        idx = subset(var)
        k, w, pos = daily_worst_values(daykey[idx], o_v[idx], how=how, presorted=True)
        worst[var] = (k, w, idx[pos])
    idx = subset("map")
    k, w, pos = daily_worst_values(daykey[idx], o_v[idx], how="min", presorted=True)
    worst["map"] = (k, w, idx[pos])

    # respiratory support / rrt / sedation episodes
    support_kinds = SUPPORT_KINDS[rules.respiratory_support]
    sup = np.isin(e_kind, support_kinds)
    sp_p, sp_s, sp_e, _ = _merge_intervals(e_p[sup], e_s[sup], e_e[sup])

    # P/F: PaO2 in window matched to FiO2 charted up to the window before it
    pa = subset("pao2")
    fi = subset("fio2", window_only=False)
    fi = fi[o_day[fi] <= max_day]
    j = match_pao2_fio2(
        o_p[pa], o_t[pa], o_p[fi], o_t[fi], window_hours=rules.fio2_match_window_hours
    )
    matched = j >= 0
    pa, j = pa[matched], j[matched]
    fio2_row = fi[j]
    pf = o_v[pa] / o_v[fio2_row]
    supported = _locate(clock, o_p[pa], o_t[pa], sp_p, sp_s, sp_e) >= 0
    resp_pts = score_respiration(pf, supported)
    badness = resp_pts.astype(np.float64) * 1e6 - pf
    k, _, pos = daily_worst_values(daykey[pa], badness, how="max", presorted=True)
    worst["pf"] = (k, pf[pos], pa[pos])
    pf_support = supported[pos]
    pf_fio2_row = fio2_row[pos]

    # GCS (all GCS rows: a pre-sedation GCS may precede the anchor)
    g_all = subset("gcs_total", window_only=False)
    sed = e_kind == "sedation"
    eff, sedated, src = gcs_under_sedation(
        o_p[g_all], o_t[g_all], o_v[g_all], e_p[sed], e_s[sed], e_e[sed], rules=rules
    )
    keep = in_window[g_all]
    g_idx, eff, sedated, src = g_all[keep], eff[keep], sedated[keep], src[keep]
    k, w, pos = daily_worst_values(daykey[g_idx], eff, how="min", presorted=True)
    worst["gcs"] = (k, w, g_idx[pos])
    gcs_sedated = sedated[pos]
    gcs_src_row = np.where(src[pos] >= 0, g_all[np.maximum(src[pos], 0)], -1)

    # urine output
    u = subset("urine_output")
    day_start = _day_start_ns(o_anchor[u], o_day[u], rules)
    k, scaled, u_sum, u_hours, pos = daily_urine(
        daykey[u], o_v[u], o_t[u], day_start, min_observed_hours=rules.urine_min_observed_hours
    )
    worst["urine"] = (k, scaled, u[pos])

    # vasopressors
    drugs = inf["drug"].astype(str).to_numpy()
    i_p = _codes(inf["patient_id"], pids) if len(inf) else np.zeros(0, dtype=np.int64)
    if len(inf):
        _unknown_patients(inf, i_p, "infusions", "start")
    i_rate = inf["rate_mcg_kg_min"].to_numpy(dtype=np.float64) if len(inf) else np.zeros(0)
    drug_code = np.array([SCORED_DRUGS.index(d) if d in SCORED_DRUGS else -1 for d in drugs])
    drug_code = drug_code.astype(np.int64)
    active = (drug_code >= 0) & (np.nan_to_num(i_rate, nan=0.0) > 0)
    ai = np.flatnonzero(active)
    i_s, i_e = _ns(inf["start"])[ai] if len(inf) else ai, _ns(inf["stop"])[ai] if len(inf) else ai
    qual, run_min = qualifying_infusions(i_p[ai], drug_code[ai], i_s, i_e, rules=rules)
    qi = ai[qual]
    rows, vday = _expand_over_days(anchor_all[i_p[qi]], i_s[qual], i_e[qual], rules)
    seg = qi[rows]
    seg_minutes = run_min[qual][rows]
    for d_i, drug in enumerate(SCORED_DRUGS):
        m = drug_code[seg] == d_i
        key = i_p[seg[m]] * span_days + vday[m]
        k, w, pos = daily_worst_values(key, i_rate[seg[m]], how="max")
        worst[drug] = (k, w, seg[m][pos])
        worst[drug + "_minutes"] = (k, seg_minutes[m][pos], seg[m][pos])

    # --- study-day grid ---------------------------------------------------------------------
    last_day = np.zeros(n_pat, dtype=np.int64)
    for keys in (worst[v][0] for v in worst):
        if keys.size:
            np.maximum.at(last_day, keys // span_days, keys % span_days)
    death_day = np.where(
        death_all != np.iinfo(np.int64).min,
        assign_study_day(death_all, anchor_all, rules),
        max_day,
    )
    n_days = np.clip(np.minimum(np.minimum(last_day, death_day), max_day), 0, None)
    g_pat = np.repeat(np.arange(n_pat), n_days)
    offsets = np.cumsum(n_days) - n_days
    g_day = np.arange(g_pat.size) - offsets[g_pat] + 1
    n_grid = g_pat.size

    def place(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values, obs/infusion row positions and a presence mask on the grid."""
        k, w, pos = worst[name]
        p, d = k // span_days, k % span_days
        ok = d <= n_days[p]
        gi = offsets[p[ok]] + d[ok] - 1
        vals = np.full(n_grid, np.nan)
        rows_ = np.full(n_grid, -1, dtype=np.int64)
        vals[gi] = w[ok]
        rows_[gi] = pos[ok]
        present = np.zeros(n_grid, dtype=bool)
        present[gi] = True
        return vals, rows_, present

    daily = pd.DataFrame(
        {
            "patient_id": pids.to_numpy()[g_pat],
            "study_day": g_day.astype(np.int64),
        }
    )
    cols = {
        "pao2_fio2_mmhg": "pf",
        "platelets_10e3_per_ul": "platelets",
        "bilirubin_mg_dl": "bilirubin",
        "map_mmhg": "map",
        "dopamine_mcg_kg_min": "dopamine",
        "dobutamine_mcg_kg_min": "dobutamine",
        "epinephrine_mcg_kg_min": "epinephrine",
        "norepinephrine_mcg_kg_min": "norepinephrine",
        "gcs_total": "gcs",
        "creatinine_mg_dl": "creatinine",
        "urine_output_ml_24h": "urine",
    }
    placed = {
        name: place(name) for name in [*cols.values(), *(d + "_minutes" for d in SCORED_DRUGS)]
    }
    for col, name in cols.items():
        daily[col] = placed[name][0]

    # respiratory support: at the deciding PaO2 if any, else any support episode that day
    gkey = g_pat * span_days + g_day
    any_support = np.zeros(n_grid, dtype=bool)
    rrt = np.zeros(n_grid, dtype=bool)
    for mask_kind, target in ((sup, any_support), (e_kind == "rrt", rrt)):
        sel = np.flatnonzero(mask_kind)
        r, dd = _expand_over_days(anchor_all[e_p[sel]], e_s[sel], e_e[sel], rules)
        keys = e_p[sel][r] * span_days + dd
        hit = np.isin(gkey, keys)
        target |= hit
    _, _, pf_present = placed["pf"]
    k_pf = worst["pf"][0]
    sup_on_grid = np.zeros(n_grid, dtype=bool)
    fio2_on_grid = np.full(n_grid, -1, dtype=np.int64)
    p_, d_ = k_pf // span_days, k_pf % span_days
    ok = d_ <= n_days[p_]
    gi = offsets[p_[ok]] + d_[ok] - 1
    sup_on_grid[gi] = pf_support[ok]
    fio2_on_grid[gi] = pf_fio2_row[ok]
    daily["respiratory_support"] = np.where(pf_present, sup_on_grid, any_support)
    daily["rrt"] = rrt
    # GCS sedation info on the grid
    k_g = worst["gcs"][0]
    p_, d_ = k_g // span_days, k_g % span_days
    ok = d_ <= n_days[p_]
    gi = offsets[p_[ok]] + d_[ok] - 1
    g_sed = np.zeros(n_grid, dtype=bool)
    g_src = np.full(n_grid, -1, dtype=np.int64)
    g_sed[gi] = gcs_sedated[ok]
    g_src[gi] = gcs_src_row[ok]
    # urine details on the grid
    k_u = worst["urine"][0]
    p_, d_ = k_u // span_days, k_u % span_days
    ok = d_ <= n_days[p_]
    gi = offsets[p_[ok]] + d_[ok] - 1
    u_sum_g = np.full(n_grid, np.nan)
    u_hours_g = np.full(n_grid, np.nan)
    u_sum_g[gi] = u_sum[ok]
    u_hours_g[gi] = u_hours[ok]

    si = rules.si_units_cutoffs == "use_printed_si_bands"
    if si:
        val_rec = obs["value_as_received"].to_numpy(dtype=np.float64)
        for col, name in (("bilirubin_umol_l", "bilirubin"), ("creatinine_umol_l", "creatinine")):
            rows_ = placed[name][1]
            units_ = pd.Series(_take_col(obs["unit_as_received"], rows_, "")).astype(str)
            is_si = (rows_ >= 0) & units_.str.casefold().str.contains("mol").to_numpy()
            daily[col] = np.where(is_si, val_rec[np.maximum(rows_, 0)], np.nan)

    scored = score_sofa(daily, rules=rules)
    raw_components = {o: scored[SOFA_COLUMNS[o]].copy() for o in Organ}
    filled = fill_trajectory(scored, rules=rules)
    s2 = score_sofa2(daily, rules=rules)
    filled["sofa2_total"] = s2["sofa2_total"].to_numpy()
    filled = filled.reset_index(drop=True)

    prov = _provenance(
        obs=obs,
        inf=inf,
        daily=filled,
        raw_components=raw_components,
        placed=placed,
        extras={
            "pf_support": daily["respiratory_support"].to_numpy(),
            "fio2_row": fio2_on_grid,
            "gcs_sedated": g_sed,
            "gcs_src_row": g_src,
            "urine_sum": u_sum_g,
            "urine_hours": u_hours_g,
        },
        si=si,
        rules=rules,
    )
    return DailySofa(daily=filled, provenance=prov)


def _take_col(col: pd.Series, rows: np.ndarray, fill: object) -> np.ndarray:
    """``col`` at ``rows`` as an object array (``fill`` where rows < 0); cheap on categoricals."""
    ok = rows >= 0
    r = np.maximum(rows, 0)
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = np.asarray(col.cat.categories, dtype=object)
        if codes.size == 0:
            return np.full(rows.size, fill, dtype=object)
        c = codes[r]
        vals = np.where(c >= 0, cats[np.maximum(c, 0)] if cats.size else None, None)
    else:
        arr = col.to_numpy()
        if arr.size == 0:
            return np.full(rows.size, fill, dtype=object)
        vals = arr[r].astype(object)
    return np.where(ok, vals, fill)


def _render(
    template: Callable[..., str], cols: dict[str, np.ndarray], mask: np.ndarray
) -> np.ndarray:
    """``template(*row)`` for masked rows, evaluated once per distinct combination of ``cols``.

    Vectorised string building: rows are factorised (``groupby().ngroup()``) and the Python
    template runs only on the distinct combinations, then is broadcast back.
    """
    out = np.full(mask.size, None, dtype=object)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    # floats are shown with 2 decimals: group on the rounded value so equal texts share a call
    frame = pd.DataFrame(
        {k: np.round(v[idx], 2) if v.dtype.kind == "f" else v[idx] for k, v in cols.items()}
    )
    codes = frame.groupby(list(cols), sort=False, dropna=False).ngroup().to_numpy()
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    uniq = frame.iloc[first]
    texts = np.array(
        [template(*row) for row in uniq.itertuples(index=False, name=None)] + [None],
        dtype=object,
    )[:-1]
    out[idx] = texts[codes]
    return out


# --- rule phrases, generated from core.sofa's named cut-offs and the SofaRules settings -------
# (core.sofa's constants are read at call time, so the texts can never drift from the scorer)


def _below_phrases(breaks: tuple[float, ...]) -> tuple[str, ...]:
    """Phrase per score 0..4 for "x < break" organs (score 0 = at or above the first break)."""
    return (f">= {_fmt(breaks[0])}", *(f"< {_fmt(b)}" for b in breaks))


def _at_or_above_phrases(breaks: tuple[float, ...]) -> tuple[str, ...]:
    """Phrase per score 0..4 for "x >= break" organs (score 0 = below the first break)."""
    return (f"< {_fmt(breaks[0])}", *(f">= {_fmt(b)}" for b in breaks))


def _gcs_phrases() -> tuple[str, ...]:
    """GCS phrase per score 0..4, e.g. ``15``, ``13-14``, ..., ``< 6`` (integer scale)."""
    b = _sofa.GCS_BREAKS
    bands = (f"{_fmt(b[k])}-{_fmt(b[k - 1] - 1)}" for k in range(1, len(b)))
    return (_fmt(b[0]), *bands, f"< {_fmt(b[-1])}")


def _pf_phrases() -> tuple[str, ...]:
    """P/F phrase per score 0..4; scores 3-4 need respiratory support."""
    p = _below_phrases(_sofa.PAO2_FIO2_MMHG_BREAKS)
    return (*p[:3], *(f"{x} with support" for x in p[3:]))


def _pf_capped_phrase() -> str:
    return f"< {_fmt(_sofa.PAO2_FIO2_MMHG_BREAKS[2])} without respiratory support (capped at 2)"


def _urine_phrases() -> dict[int, str]:
    u3, u4 = _sofa.URINE_ML_24H_SCORE3_BELOW, _sofa.URINE_ML_24H_SCORE4_BELOW
    return {0: f">= {_fmt(u3)}", 3: f"< {_fmt(u3)}", 4: f"< {_fmt(u4)}"}


def vasopressor_duration_text(rules: SofaRules = SofaRules()) -> str:
    """The infusion-duration rule in words, e.g. ``">= 60 min rule"``.

    From ``rules.vasopressor_min_minutes`` and ``rules.require_vasopressor_60min``; for UI
    labels and the provenance texts (SRC-VINCENT "at least 1 h", SRC-RICU ``vaso60``).
    """
    if not rules.require_vasopressor_60min:
        return "no minimum duration"
    return f">= {_fmt(rules.vasopressor_min_minutes)} min rule"


def vasopressor_counts(minutes: object, rules: SofaRules = SofaRules()) -> np.ndarray:
    """Whether an infusion run of ``minutes`` (merged run length) counts for SOFA (bool array).

    The same test :func:`qualifying_infusions` applies after merging segments less than
    ``rules.vasopressor_merge_gap_minutes`` apart; for displays that show a run's length.
    """
    m = np.asarray(minutes, dtype=np.float64)
    if not rules.require_vasopressor_60min:
        return np.ones(m.shape, dtype=bool)
    return m >= rules.vasopressor_min_minutes


def _drug_phrase(drug: str) -> str:
    tiers = _sofa.drug_tiers(drug)
    return f"{drug} " + ", ".join(f"> {_fmt(x)} -> {pts}" for x, pts in tiers)


def organ_rule_texts(rules: SofaRules = SofaRules()) -> dict[Organ, str]:
    """One sentence per organ describing how it is scored under ``rules``.

    Generated from core.sofa's named cut-offs and the SofaRules settings (FiO2 window,
    support definition, vasopressor minutes and merge gap, sedated-GCS rule, urine hours),
    so a legend or tooltip never re-types a number (clinical.md 2.8).

    Returns
    -------
    dict
        :class:`core.vocab.Organ` -> text.
    """
    pf = _pf_phrases()
    support = ", ".join(k.replace("_", " ") for k in SUPPORT_KINDS[rules.respiratory_support])
    plt = _below_phrases(_sofa.PLATELETS_10E3_PER_UL_BREAKS)
    bili = _at_or_above_phrases(_sofa.BILIRUBIN_MG_DL_BREAKS)
    creat = _at_or_above_phrases(_sofa.CREATININE_MG_DL_BREAKS)
    gcs = _gcs_phrases()
    urine = _urine_phrases()

    def tiers(phrases: tuple[str, ...]) -> str:
        return ", ".join(f"{p} -> {k}" for k, p in enumerate(phrases) if k)

    if rules.require_vasopressor_60min:
        duration = (
            f"counted when infused for >= {_fmt(rules.vasopressor_min_minutes)} min "
            f"(segments less than {_fmt(rules.vasopressor_merge_gap_minutes)} min apart merged)"
        )
    else:
        duration = "counted at any duration"
    sedated = (
        "under sedation the last GCS before sedation (15 if none)"
        if rules.gcs_sedated == "pre_sedation_or_15"
        else "GCS as charted, also under sedation"
    )
    return {
        Organ.RESPIRATION: (
            f"PaO2/FiO2 (mmHg; FiO2 charted up to {_fmt(rules.fio2_match_window_hours)} h "
            f"before the PaO2): {tiers(pf)}; support = {support}"
        ),
        Organ.COAGULATION: f"platelets ({CANONICAL_UNITS['platelets']}): {tiers(plt)}",
        Organ.LIVER: f"bilirubin ({CANONICAL_UNITS['bilirubin']}): {tiers(bili)}",
        Organ.CARDIOVASCULAR: (
            f"MAP < {_fmt(_sofa.MAP_MMHG_SCORE1_BELOW)} mmHg -> 1; "
            + "; ".join(_drug_phrase(d) for d in SCORED_DRUGS)
            + f" (mcg/kg/min), {duration}"
        ),
        Organ.CNS: f"GCS {tiers(gcs)}; {sedated}",
        Organ.RENAL: (
            f"creatinine ({CANONICAL_UNITS['creatinine']}): {tiers(creat)}; urine output "
            f"{urine[3]} mL/24 h -> 3, {urine[4]} -> 4 (scaled to 24 h when at least "
            f"{_fmt(rules.urine_min_observed_hours)} h observed)"
        ),
    }


def _threshold_template(
    label: str, canon_unit: str, phrases: tuple[str, ...]
) -> Callable[..., str]:
    def template(val: float, unit: str, canon: float, score: int, si: bool) -> str:
        txt = f"{label} {_fmt(val)} {unit}"
        if unit != canon_unit:
            txt += f" = {_fmt(canon)} {canon_unit}"
        phrase = "on the printed SI bands" if si else phrases[score]
        return f"{txt} {phrase} -> {score}"

    return template


def _cns_template_for() -> Callable[..., str]:
    phrases = _gcs_phrases()
    normal = _fmt(GCS_NORMAL)

    def template(sedated: bool, charted: float, pre: float, score: int) -> str:
        phrase = phrases[score]
        if not sedated:
            return f"GCS {_fmt(charted)} {phrase} -> {score}"
        if np.isnan(pre):
            return (
                f"sedated: no GCS before sedation -> {normal} "
                f"(charted during sedation: {_fmt(charted)}) -> {score}"
            )
        return (
            f"sedated: pre-sedation GCS {_fmt(pre)} (charted during sedation: {_fmt(charted)}) "
            f"{phrase} -> {score}"
        )

    return template


def _resp_template_for() -> Callable[..., str]:
    phrases = _pf_phrases()
    capped_phrase = _pf_capped_phrase()

    def template(
        pao2: float,
        pao2_unit: str,
        pao2_mmhg: float,
        fio2: float,
        fio2_unit: str,
        pf: float,
        capped: bool,
        score: int,
    ) -> str:
        phrase = capped_phrase if capped else phrases[score]
        conv = f" = {_fmt(pao2_mmhg)} mmHg" if pao2_unit != "mmHg" else ""
        return (
            f"PaO2 {_fmt(pao2)} {pao2_unit}{conv} / FiO2 {_fmt(fio2)} {fio2_unit} "
            f"= P/F {_fmt(pf)} mmHg {phrase} -> {score}"
        )

    return template


def _urine_template_for() -> Callable[..., str]:
    phrases = _urine_phrases()

    def template(total: float, hours: float, per_24h: float, u_score: int, score: int) -> str:
        scaled = f"-> {_fmt(per_24h)} mL/24h " if total != per_24h else ""
        return f"urine {_fmt(total)} mL over {_fmt(hours)} h {scaled}{phrases[u_score]} -> {score}"

    return template


def _cv_template_for(rules: SofaRules) -> Callable[..., str]:
    duration = vasopressor_duration_text(rules)
    map_cut = _fmt(_sofa.MAP_MMHG_SCORE1_BELOW)

    def template(
        decider: int,
        rate: float,
        received: float,
        unit: str,
        minutes: float,
        mapv: float,
        low_map: bool,
        score: int,
    ) -> str:
        if decider < len(SCORED_DRUGS):
            return (
                f"{SCORED_DRUGS[decider]} {_fmt(rate)} mcg/kg/min "
                f"(received {_fmt(received)} {unit}) for {_fmt(minutes)} min ({duration}) "
                f"-> {score}"
            )
        if decider == len(SCORED_DRUGS):
            op = f"< {map_cut}" if low_map else f">= {map_cut}, no qualifying vasopressor"
            return f"MAP {_fmt(mapv)} mmHg {op} -> {score}"
        return f"no qualifying vasopressor and MAP missing -> {score}"

    return template


def _imputed_template(kind: str, src_day: float) -> str:
    if kind == "locf":
        return f"missing -> carried forward from study day {int(src_day)} (locf)"
    if kind == "day1_zero":
        return "missing on study day 1 -> 0 (day1_zero)"
    return f"missing -> 0 ({kind})"


def _provenance(
    *,
    obs: pd.DataFrame,
    inf: pd.DataFrame,
    daily: pd.DataFrame,
    raw_components: dict[Organ, pd.Series],
    placed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    extras: dict[str, np.ndarray],
    si: bool,
    rules: SofaRules,
) -> pd.DataFrame:
    """Long provenance table (one row per patient-day and organ), built column-wise."""
    n = len(daily)
    nat = np.iinfo(np.int64).min
    o_val = obs["value_as_received"].to_numpy(dtype=np.float64)
    o_time = _ns(obs["time"])
    o_canon = obs["value"].to_numpy(dtype=np.float64)
    if len(inf):
        i_val = inf["rate_as_received"].to_numpy(dtype=np.float64)
        i_unit = inf["unit_as_received"].astype(object).to_numpy()
        i_start = _ns(inf["start"])
        i_src = inf["source"].astype(object).to_numpy() if "source" in inf else None
    else:
        i_val, i_unit, i_start, i_src = np.zeros(1), np.array([None]), np.full(1, nat), None

    def take(arr: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
        if arr.size == 0:
            return np.full(rows.size, fill)
        return np.where(rows >= 0, arr[np.maximum(rows, 0)], fill)

    def comp(organ: Organ) -> np.ndarray:
        return raw_components[organ].to_numpy(dtype=np.int64, na_value=-1)

    def o_unit_at(rows: np.ndarray, fill: object = "") -> np.ndarray:
        return _take_col(obs["unit_as_received"], rows, fill)

    def unit_is_si(rows: np.ndarray) -> np.ndarray:
        if not si:
            return np.zeros(rows.size, dtype=bool)
        u = pd.Series(o_unit_at(rows)).astype(str).str.casefold()
        return u.str.contains("mol").to_numpy()

    cols: dict[Organ, dict[str, np.ndarray]] = {}

    def from_obs(organ: Organ, rows: np.ndarray, rule: np.ndarray) -> None:
        cols[organ] = {
            "variable": _take_col(obs["variable"], rows, None),
            "value": take(o_val, rows, np.nan),
            "unit": o_unit_at(rows, None),
            "time": take(o_time, rows, nat),
            "source": _take_col(obs["source"], rows, None) if "source" in obs else np.full(n, None),
            "rule": rule,
        }

    # single-variable organs
    for organ, name, phrases in (
        (
            Organ.COAGULATION,
            "platelets",
            _below_phrases(_sofa.PLATELETS_10E3_PER_UL_BREAKS),
        ),
        (
            Organ.LIVER,
            "bilirubin",
            _at_or_above_phrases(_sofa.BILIRUBIN_MG_DL_BREAKS),
        ),
    ):
        label, canon_unit = name, CANONICAL_UNITS[name]
        vals, rows, _ = placed[name]
        score = comp(organ)
        rule = _render(
            _threshold_template(label, canon_unit, phrases),
            {
                "v": take(o_val, rows, np.nan),
                "u": o_unit_at(rows),
                "c": vals,
                "s": score,
                "si": unit_is_si(rows) & (organ is Organ.LIVER),
            },
            (rows >= 0) & (score >= 0),
        )
        from_obs(organ, rows, rule)

    # CNS (sedation: the substituted pre-sedation GCS is the deciding value)
    rows = placed["gcs"][1]
    score = comp(Organ.CNS)
    sed, src = extras["gcs_sedated"], extras["gcs_src_row"]
    pre = np.where(sed & (src >= 0), take(o_val, src, np.nan), np.nan)
    rule = _render(
        _cns_template_for(),
        {"sed": sed, "c": take(o_val, rows, np.nan), "p": pre, "s": score},
        (rows >= 0) & (score >= 0),
    )
    from_obs(Organ.CNS, np.where(sed & (src >= 0), src, rows), rule)

    # respiration
    pf, rows, _ = placed["pf"]
    score = comp(Organ.RESPIRATION)
    frow = extras["fio2_row"]
    rule = _render(
        _resp_template_for(),
        {
            "pa": take(o_val, rows, np.nan),
            "pu": o_unit_at(rows),
            "pm": take(o_canon, rows, np.nan),
            "fi": take(o_val, frow, np.nan),
            "fu": o_unit_at(frow),
            "pf": pf,
            "cap": (score == 2)
            & (pf < _sofa.PAO2_FIO2_MMHG_BREAKS[2])
            & ~extras["pf_support"].astype(bool),
            "s": score,
        },
        (rows >= 0) & (frow >= 0) & (score >= 0),
    )
    from_obs(Organ.RESPIRATION, rows, rule)

    # renal: creatinine or urine, whichever scores worse (creatinine on ties)
    creat, c_rows, _ = placed["creatinine"]
    urine = placed["urine"][0]
    u_rows = np.where(np.isnan(urine), -1, placed["urine"][1])
    score = comp(Organ.RENAL)
    c_score = np.where(c_rows >= 0, _sofa.score_creatinine(creat), -1)
    u_score = np.where(np.isnan(urine), -1, _sofa.score_urine_output(urine))
    use_urine = (u_rows >= 0) & (u_score > c_score)
    renal_rows = np.where(use_urine, u_rows, c_rows)
    c_rule = _render(
        _threshold_template(
            "creatinine",
            CANONICAL_UNITS["creatinine"],
            _at_or_above_phrases(_sofa.CREATININE_MG_DL_BREAKS),
        ),
        {
            "v": take(o_val, c_rows, np.nan),
            "u": o_unit_at(c_rows),
            "c": creat,
            "s": score,
            "si": unit_is_si(c_rows),
        },
        ~use_urine & (c_rows >= 0) & (score >= 0),
    )
    u_rule = _render(
        _urine_template_for(),
        {
            "t": extras["urine_sum"],
            "h": extras["urine_hours"],
            "x": urine,
            "us": u_score,
            "s": score,
        },
        use_urine & (score >= 0),
    )
    from_obs(Organ.RENAL, renal_rows, np.where(use_urine, u_rule, c_rule))

    # cardiovascular: the drug (or MAP) that decides
    score = comp(Organ.CARDIOVASCULAR)
    map_vals, map_rows, _ = placed["map"]
    decider = np.full(n, len(SCORED_DRUGS) + 1, dtype=np.int64)
    inf_rows = np.full(n, -1, dtype=np.int64)
    rate = np.full(n, np.nan)
    minutes = np.full(n, np.nan)
    for d_i in range(len(SCORED_DRUGS) - 1, -1, -1):  # first drug in SCORED_DRUGS wins ties
        drug = SCORED_DRUGS[d_i]
        v = placed[drug][0]
        sub = _sofa.drug_points(drug, v)
        hit = (sub == score) & (score >= 2)
        decider[hit] = d_i
        inf_rows[hit] = placed[drug][1][hit]
        rate[hit] = v[hit]
        minutes[hit] = placed[drug + "_minutes"][0][hit]
    by_map = (decider > len(SCORED_DRUGS)) & (map_rows >= 0)
    decider[by_map] = len(SCORED_DRUGS)
    is_inf = decider < len(SCORED_DRUGS)
    rule = _render(
        _cv_template_for(rules),
        {
            "d": decider,
            "r": rate,
            "rv": take(i_val, inf_rows, np.nan),
            "u": take(i_unit, inf_rows, ""),
            "m": minutes,
            "map": map_vals,
            "low": map_vals < _sofa.MAP_MMHG_SCORE1_BELOW,
            "s": score,
        },
        score >= 0,
    )
    from_obs(Organ.CARDIOVASCULAR, np.where(by_map, map_rows, -1), rule)
    cv = cols[Organ.CARDIOVASCULAR]
    drug_names = np.array([*SCORED_DRUGS, None, None], dtype=object)
    cv["variable"] = np.where(is_inf, drug_names[decider], cv["variable"])
    cv["value"] = np.where(is_inf, take(i_val, inf_rows, np.nan), cv["value"])
    cv["unit"] = np.where(is_inf, take(i_unit, inf_rows, None), cv["unit"])
    cv["time"] = np.where(is_inf, take(i_start, inf_rows, nat), cv["time"])
    inf_source = take(i_src, inf_rows, None) if i_src is not None else np.full(n, "infusions")
    cv["source"] = np.where(is_inf, inf_source, cv["source"])

    # imputed values: rule names the policy (and the day carried forward from)
    pid = daily["patient_id"].to_numpy()
    sday = daily["study_day"].to_numpy()
    kinds, imputed_flags, scores = {}, {}, {}
    for organ in Organ:
        kind = daily[f"{organ.value}_imputation"].to_numpy()
        imputed = daily[f"{organ.value}_imputed"].to_numpy(dtype=bool)
        seen = raw_components[organ].notna().to_numpy() | (sday == 1)
        src_day = (
            pd.Series(np.where(seen, sday, np.nan)).groupby(pid, sort=False).ffill().to_numpy()
        )
        imp_rule = _render(_imputed_template, {"k": kind, "d": src_day}, imputed)
        cols[organ]["rule"] = np.where(imputed, imp_rule, cols[organ]["rule"])
        kinds[organ], imputed_flags[organ] = kind, imputed
        scores[organ] = daily[SOFA_COLUMNS[organ]].to_numpy(dtype=np.float64, na_value=np.nan)

    organs = list(Organ)

    def interleave(get: Callable[[Organ], np.ndarray]) -> np.ndarray:
        return np.stack([get(o) for o in organs], axis=1).reshape(-1)

    score_all = interleave(lambda o: scores[o])
    return pd.DataFrame(
        {
            "patient_id": np.repeat(pid, len(organs)),
            "study_day": np.repeat(sday, len(organs)),
            "organ": np.tile(np.array([o.value for o in organs], dtype=object), n),
            "score": pd.arrays.IntegerArray(
                np.nan_to_num(score_all, nan=0.0).astype(np.int8), np.isnan(score_all)
            ),
            "variable": interleave(lambda o: cols[o]["variable"]),
            "value": interleave(lambda o: cols[o]["value"].astype(np.float64)),
            "unit": interleave(lambda o: cols[o]["unit"]),
            "time": interleave(lambda o: cols[o]["time"].astype(np.int64)).view("datetime64[ns]"),
            "source": interleave(lambda o: cols[o]["source"]),
            "rule": interleave(lambda o: cols[o]["rule"]),
            "imputed": interleave(lambda o: imputed_flags[o]),
            "imputation": interleave(lambda o: kinds[o]),
        }
    )


__all__ = [
    "SOFA_INPUT_COLUMNS",
    "DailySofa",
    "assign_study_day",
    "daily_urine",
    "daily_worst_values",
    "derive_daily_sofa",
    "fill_trajectory",
    "gcs_under_sedation",
    "match_pao2_fio2",
    "organ_rule_texts",
    "qualifying_infusions",
    "vasopressor_counts",
    "vasopressor_duration_text",
]
