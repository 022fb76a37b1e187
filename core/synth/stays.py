"""Raw ``icu_stays``: ICU admission and discharge of every analysed patient, readmissions.

Drawn from their **own** random stream (:data:`STAYS_STREAM`, seeded with the trial seed),
after every other table: the other tables are byte-identical to a generator without stays.

Rules (times in whole seconds, like every synthetic time):

- admission 2-36 h before the first study-drug dose (``anchor``), uniform;
- discharge, in this order: a patient discharged by the cohort
  (:attr:`~core.synth.cohort.Cohort.last_icu` before day 28, no charting afterwards) leaves
  0.5-6 h after the end of that study day; else a patient who dies (by day 90) dies in the
  ICU (``stop = death_time``); else (alive, charted to day 28) the patient leaves 2-12 h
  after the last charted value. A stay never ends before the last charted value
  (observation, infusion or episode stop) and never after death: a discharge drawn at or
  after death becomes a death in the ICU;
- about :data:`READMISSION_SHARE` of the patients discharged alive come back once, 1-21 days
  later, for 1-8 days (ending at death if they die during it);
- unit ``"<site_id> ICU"``; beds numbered per site, the lowest bed free at admission (a bed
  is free again at the discharge time), so no two stays share a bed at the same time.
"""

from __future__ import annotations

import heapq
from typing import Final

import numpy as np
import pandas as pd

from core.synth._base import DAY_S, N_DAYS_MAX, hours, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort

__all__ = ["READMISSION_SHARE", "STAYS_STREAM", "emit_icu_stays", "stays_rng"]

#: second entropy word of the stays' random stream (``default_rng([seed, STAYS_STREAM])``)
STAYS_STREAM: Final = 0x1C0_57A7
#: share of the patients discharged alive who are readmitted once
READMISSION_SHARE: Final = 0.05


def stays_rng(seed: int) -> np.random.Generator:
    """The stays' own random stream for a trial seed (independent of the main generator)."""
    return np.random.default_rng([int(seed), STAYS_STREAM])


def _last_charted_s(
    ch: Charting, observations: pd.DataFrame, infusions: pd.DataFrame, episodes: pd.DataFrame
) -> np.ndarray:
    """Per patient (``ch.pid`` order) the last charted time in s (anchor when none)."""
    last = np.asarray(ch.anchor, dtype=np.int64).copy()
    where = pd.Index(ch.pid)
    for frame, col in ((observations, "time"), (infusions, "stop"), (episodes, "stop")):
        t = frame[col].dropna()
        if len(t) == 0:
            continue
        secs = t.to_numpy("datetime64[ns]").astype("datetime64[s]").astype(np.int64)
        per = pd.Series(secs, index=frame.loc[t.index, "patient_id"].to_numpy()).groupby(level=0)
        top = per.max()
        k = where.get_indexer(top.index)
        last[k] = np.maximum(last[k], top.to_numpy(np.int64))
    return last


def _beds(site: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Bed numbers (1, 2, ...) per site: the lowest bed free at admission."""
    bed = np.zeros(start.size, np.int64)
    order = np.lexsort((stop, start, site))
    current = None
    busy: list[tuple[int, int]] = []  # (discharge s, bed) of occupied beds
    free: list[int] = []
    n_beds = 0
    for i in order:
        if site[i] != current:
            current, busy, free, n_beds = site[i], [], [], 0
        while busy and busy[0][0] <= start[i]:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            b = heapq.heappop(free)
        else:
            n_beds += 1
            b = n_beds
        bed[i] = b
        heapq.heappush(busy, (int(stop[i]), b))
    return bed


def emit_icu_stays(
    rng: np.random.Generator,
    c: Cohort,
    ch: Charting,
    site_id: np.ndarray,
    *,
    n_days: int,
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
) -> pd.DataFrame:
    """The ``icu_stays`` table of the analysed patients (see the module notes).

    Parameters
    ----------
    rng
        The stays' own stream (:func:`stays_rng`); no other table draws from it.
    c, ch
        Cohort (ICU discharge day, death day) and emission grid (ids, anchor, death time,
        last charted day), in ``patient_id`` order.
    site_id
        Site of each analysed patient.
    n_days
        Study days with charting.
    observations, infusions, episodes
        The emitted raw tables: a stay covers every charted value of its patient.

    Returns
    -------
    DataFrame
        ``patient_id, unit, bed, start, stop`` (``datetime64[ns]``, ``stop`` never missing:
        the synthetic trial is closed), sorted by patient and admission.
    """
    m = c.m
    anchor, death_s = ch.anchor, ch.death_s
    never = np.iinfo(np.int64).max
    # every draw has one value per patient, in a fixed order (deterministic stream use)
    before_h = rng.uniform(2.0, 36.0, m)
    after_day_h = rng.uniform(0.5, 6.0, m)
    after_last_h = rng.uniform(2.0, 12.0, m)
    readmit = rng.random(m) < READMISSION_SHARE
    gap_h = rng.uniform(24.0, 21 * 24.0, m)
    length_h = rng.uniform(24.0, 8 * 24.0, m)

    start = anchor - hours(before_h)
    data_end = _last_charted_s(ch, observations, infusions, episodes)
    # the cohort's ICU discharge (after study day last_icu; charted or not, n_days aside)
    discharged = c.last_icu < N_DAYS_MAX
    leave = np.where(
        discharged,
        anchor + c.last_icu.astype(np.int64) * DAY_S + hours(after_day_h),
        data_end + hours(after_last_h),
    )
    leave = np.maximum(leave, data_end + 1)
    # no discharge by the cohort and dead by day 90: dies in the ICU; a discharge drawn at or
    # after death is a death in the ICU as well
    died_in_icu = (~discharged & (death_s < never)) | (leave >= death_s)
    stop = np.where(died_in_icu, death_s, leave)

    # one readmission for a few of the patients discharged alive, starting before death
    re_start = stop + hours(gap_h)
    again = np.flatnonzero(readmit & ~died_in_icu & (re_start < death_s))
    re_stop = np.minimum(re_start[again] + hours(length_h[again]), death_s[again])

    pat = np.concatenate([np.arange(m), again])
    s = np.concatenate([start, re_start[again]])
    e = np.concatenate([stop, re_stop])
    assert (e < never).all(), "every synthetic stay ends (alive patients are discharged)"
    site = np.asarray(site_id, dtype=object)[pat]
    _, site_code = np.unique(site.astype(str), return_inverse=True)
    bed = _beds(site_code, s, e)
    order = np.lexsort((s, pat))
    return pd.DataFrame(
        {
            "patient_id": ch.pid[pat[order]],
            "unit": np.array([f"{x} ICU" for x in site[order]], dtype=object),
            "bed": np.array([f"{b:02d}" for b in bed[order]], dtype=object),
            "start": to_datetime(s[order]),
            "stop": to_datetime(e[order]),
        }
    )
