"""Vectorised building blocks of the daily-SOFA derivation (no pandas loops per patient).

Study days (the rule itself lives in :mod:`core.time`), worst value per patient-day, the
(patient, time) clock for asof joins, interval merging and lookup, the PaO2-FiO2 asof match,
urine output scaled to 24 h and the GCS under sedation. Every function is pure and works on
integer patient codes and int64 nanosecond times.

References: SRC-MIMIC ``bg.sql`` (FiO2 window), ``gcs.sql`` (GCS before sedation); SRC-RICU
``urine24``, ``sed_impute``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from core.rules import SofaRules
from core.time import NS_PER_HOUR, NS_PER_MS, as_ns, study_day_ns

#: 15 = normal GCS assumed when no GCS before sedation is known (SRC-MIMIC gcs.sql, SRC-RICU)
GCS_NORMAL: Final = 15.0


def assign_study_day(times: object, anchors: object, rules: SofaRules = SofaRules()) -> np.ndarray:
    """Study day of each time (int64; < 1 before the anchor): :func:`core.time.study_day_ns`
    on datetime arrays without NaT (the one day rule, docs/clinical.md 1.5)."""
    return study_day_ns(as_ns(times), as_ns(anchors), rules)


def group_starts(sorted_key: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal keys in a sorted key array."""
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
    starts = group_starts(k)
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


class Clock:
    """Composite (patient code, time) keys at millisecond resolution for asof joins."""

    def __init__(self, *times_ns: np.ndarray, n_patients: int):
        valid = [t[t != np.iinfo(np.int64).min] for t in times_ns if t.size]
        self.t0 = min((int(t.min()) for t in valid if t.size), default=0)
        t1 = max((int(t.max()) for t in valid if t.size), default=0)
        self.span = (t1 - self.t0) // NS_PER_MS + 2
        if self.span * max(n_patients, 1) >= 2**62:
            raise ValueError("time span x patients too large for millisecond composite keys")

    def key(self, pcode: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Composite int64 key: patient code, then milliseconds since the earliest time."""
        return pcode.astype(np.int64) * self.span + (t_ns - self.t0) // NS_PER_MS


def merge_intervals(
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


def locate_interval(
    clock: Clock,
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


def expand_over_days(
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
    clock = Clock(as_ns(pao2_time), as_ns(fio2_time), n_patients=n_pat)
    ft = as_ns(fio2_time)
    fkey = clock.key(fio2_pcode, ft)
    order = np.argsort(fkey, kind="stable")
    pt = as_ns(pao2_time)
    j = np.searchsorted(fkey[order], clock.key(pao2_pcode, pt), side="right") - 1
    jj = order[np.maximum(j, 0)] if order.size else np.zeros_like(j)
    if order.size == 0:
        return np.full(pao2_pcode.size, -1, dtype=np.int64)
    window = round(window_hours * NS_PER_HOUR)
    ok = (j >= 0) & (fio2_pcode[jj] == pao2_pcode) & (pt - ft[jj] <= window) & (pt >= ft[jj])
    return np.where(ok, jj, -1)


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
    starts = group_starts(k)
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
    clock = Clock(time_ns, sed_start, sed_stop, n_patients=n_pat)
    ep_p, ep_s, ep_e, _ = merge_intervals(sed_pcode, sed_start, sed_stop)
    ep = locate_interval(clock, pcode, time_ns, ep_p, ep_s, ep_e)
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


def run_codes(values: np.ndarray, categories: pd.Index) -> np.ndarray:
    """``pd.Categorical(values, categories=categories).codes`` (int64, -1 = not a category) of
    an object array, looked up once per run of equal values: rows sorted by patient repeat
    one id hundreds of times, and comparing neighbours is cheaper than hashing every row.
    Values that do not compare to a neighbour (``pd.NA``) or short runs: the plain lookup."""
    n = values.size
    if n >= 2:
        try:
            change = np.flatnonzero(values[1:] != values[:-1]) + 1
        except (TypeError, ValueError):  # pd.NA is neither equal nor unequal
            change = None
        if change is not None and change.size <= n // 8:
            starts = np.r_[0, change]
            heads = pd.Categorical(values[starts], categories=categories).codes.astype(np.int64)
            return np.repeat(heads, np.diff(np.r_[starts, n]))
    return pd.Categorical(values, categories=categories).codes.astype(np.int64)


def take_codes(col: pd.Series, rows: np.ndarray, fill: object) -> tuple[np.ndarray, np.ndarray]:
    """``col`` at ``rows`` as ``(codes, labels)`` with ``labels[codes]`` equal to
    :func:`take_col` (``fill`` where rows < 0): texts can then be grouped on the integer codes
    and each label handled once. Categoricals give their own codes (no string is touched);
    other columns are taken and factorised, every missing value keeping its own label (None
    and NaN print differently)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = np.asarray(col.cat.categories, dtype=object)
        labels = np.empty(cats.size + 2, dtype=object)
        labels[: cats.size] = cats
        labels[cats.size :] = [None, fill]
        codes = col.cat.codes.to_numpy()
        if codes.size == 0:
            return np.full(rows.size, cats.size + 1, dtype=np.int64), labels
        c = codes[np.maximum(rows, 0)].astype(np.int64)
        c[c < 0] = cats.size
        c[rows < 0] = cats.size + 1
        return c, labels
    return coded(take_col(col, rows, fill))


def coded(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, labels)`` of an object array, ``labels[codes]`` being ``values`` itself:
    factorised, each missing value (None, NaN, ``<NA>``) its own label."""
    codes, uniq = pd.factorize(values)
    missing = np.flatnonzero(codes < 0)
    labels = np.empty(len(uniq) + missing.size, dtype=object)
    labels[: len(uniq)] = np.asarray(uniq, dtype=object)
    labels[len(uniq) :] = values[missing]
    codes = codes.astype(np.int64)
    codes[missing] = len(uniq) + np.arange(missing.size)
    return codes, labels


def take_col(col: pd.Series, rows: np.ndarray, fill: object) -> np.ndarray:
    """``col`` at ``rows`` as an object array (``fill`` where rows < 0); cheap on categoricals
    (one take of their labels) and Arrow-backed columns (only the rows taken are converted)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, labels = take_codes(col, rows, fill)
        return labels[codes]
    ok = rows >= 0
    r = np.maximum(rows, 0)
    if isinstance(col.dtype, np.dtype):
        arr = col.to_numpy()
        if arr.size == 0:
            return np.full(rows.size, fill, dtype=object)
        vals = arr[r].astype(object)
    else:  # extension arrays (e.g. Arrow strings): take first, convert only the rows taken
        if len(col) == 0:
            return np.full(rows.size, fill, dtype=object)
        vals = col.array.take(r).to_numpy(dtype=object)
    return np.where(ok, vals, fill)
