"""The study-day rule: the only implementation (docs/clinical.md 1.5; ``SofaRules.study_day``).

Every study day in the project (daily SOFA rows, the day of death that the endpoint scores as
24 points, biomarker days, ADaM ``ADY``/``ASTDY``, synthetic charting) comes from here, so that
a change of ``SofaRules.study_day`` moves all of them together.

- ``rolling_24h_from_first_dose`` (default): day n = [anchor + (n-1)·24 h, anchor + n·24 h).
- ``calendar_date``: day 1 = the anchor's calendar date; day n = that date + (n-1) days.

Days before the anchor are < 1 (day 0 is the 24 h before the first dose); a missing time or
anchor gives <NA>, never a number.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from core.rules import SofaRules

NS_PER_MS: Final = 1_000_000
NS_PER_MIN: Final = 60 * 1_000_000_000
NS_PER_HOUR: Final = 60 * NS_PER_MIN
NS_PER_DAY: Final = 24 * NS_PER_HOUR
_NAT: Final = np.iinfo(np.int64).min


def as_ns(x: object) -> np.ndarray:
    """Datetimes as int64 nanoseconds since the epoch (NaT -> int64 min)."""
    if isinstance(x, pd.Series | pd.Index):
        x = x.to_numpy(dtype="datetime64[ns]")
    return np.asarray(x, dtype="datetime64[ns]").view(np.int64)


def study_day_ns(
    t_ns: np.ndarray, anchor_ns: np.ndarray, rules: SofaRules = SofaRules()
) -> np.ndarray:
    """The day rule on int64 nanoseconds (fast path; callers guarantee no NaT)."""
    if rules.study_day == "calendar_date":
        return t_ns // NS_PER_DAY - anchor_ns // NS_PER_DAY + 1
    return (t_ns - anchor_ns) // NS_PER_DAY + 1


def day_start_ns(
    anchor_ns: np.ndarray, day: np.ndarray, rules: SofaRules = SofaRules()
) -> np.ndarray:
    """Start (int64 ns) of study day ``day`` for each anchor: the inverse of the day rule."""
    if rules.study_day == "calendar_date":
        return anchor_ns // NS_PER_DAY * NS_PER_DAY + (day - 1) * NS_PER_DAY
    return anchor_ns + (day - 1) * NS_PER_DAY


def study_day(times: object, anchors: object, *, rules: SofaRules = SofaRules()) -> pd.Series:
    """Study day of each time (nullable Int64; <NA> where the time or the anchor is missing).

    Parameters
    ----------
    times
        Datetimes (Series, Index, array, or a scalar).
    anchors
        The patient's first study-drug dose (or ICU admission for non-trial patients), one per
        time or a scalar.
    rules
        ``rules.study_day`` picks the clock (module docstring).

    Returns
    -------
    Series
        Int64, indexed like ``times`` when it is a Series.
    """
    index = times.index if isinstance(times, pd.Series) else None
    t = np.atleast_1d(as_ns(times))
    a = np.atleast_1d(as_ns(anchors))
    t, a = np.broadcast_arrays(t, a)
    missing = (t == _NAT) | (a == _NAT)
    days = study_day_ns(np.where(missing, 0, t), np.where(missing, 0, a), rules)
    return pd.Series(pd.arrays.IntegerArray(days.astype(np.int64), missing), index=index)


#: the replay clock's fixed origin: the replayed trial starts its cycle at this instant
REPLAY_EPOCH: Final = pd.Timestamp("2026-01-01 00:00")


def replay_span(starts: pd.Series, stops: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period a replay cycles through, from ICU stays (``start``, ``stop``; missing stop =
    still in): from the moment the unit has filled (the first admission plus the 75th
    percentile of the stay lengths) to the 95th percentile of the admissions, so the replayed
    census neither ramps up from, nor runs down to, an empty unit. A dataset shorter than that
    gives the middle 90 % of its admissions; the span is at least one day."""
    starts = pd.to_datetime(pd.Series(starts)).dropna().sort_values()
    lengths = (pd.to_datetime(pd.Series(stops)) - pd.to_datetime(pd.Series(starts))).dropna()
    fill = lengths.quantile(0.75) if not lengths.empty else pd.Timedelta(0)
    lo, hi = starts.iloc[0] + fill, starts.quantile(0.95)
    if hi - lo < pd.Timedelta(days=1):
        lo, hi = starts.quantile(0.05), starts.quantile(0.95)
    return lo, max(hi, lo + pd.Timedelta(days=1))


def replay_time(
    now: pd.Timestamp, span_start: pd.Timestamp, span_stop: pd.Timestamp
) -> pd.Timestamp:
    """The synthetic time that the real time ``now`` replays (demo clock).

    The data's period ``[span_start, span_stop)``, widened to whole days, is laid end to end
    from :data:`REPLAY_EPOCH` on; ``now`` maps into it at the same time of day, so the board
    changes during the day as the trial did, and a day later shows the trial's next day.
    """
    start = pd.Timestamp(span_start).floor("D")
    days = max(1, int(np.ceil((pd.Timestamp(span_stop) - start) / pd.Timedelta(days=1))))
    offset = (pd.Timestamp(now) - REPLAY_EPOCH) % pd.Timedelta(days=days)
    return start + offset
