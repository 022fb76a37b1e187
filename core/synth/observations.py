"""Raw ``observations``: time-stamped values whose worst per study day lands in the band of
that day's latent organ score (half-open SOFA intervals of clinical.md 2.8, with margins);
units partly SI (umol/L, kPa, FiO2 in %, 10^9/L) per site."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from core.concepts import (
    BILIRUBIN_UMOL_L_PER_MG_DL,
    BIOMARKER_COLUMNS,
    CREATININE_UMOL_L_PER_MG_DL,
    FIO2_FRACTION_PER_PCT,
    KPA_TO_MMHG,
    LACTATE_MG_DL_PER_MMOL_L,
    OBSERVATIONS,
    concept,
)
from core.sofa import (
    BILIRUBIN_MG_DL_BREAKS,
    CREATININE_MG_DL_BREAKS,
    GCS_BREAKS,
    MAP_MMHG_SCORE1_BELOW,
    PAO2_FIO2_MMHG_BREAKS,
    PLATELETS_10E3_PER_UL_BREAKS,
    URINE_ML_24H_SCORE3_BELOW,
    URINE_ML_24H_SCORE4_BELOW,
)
from core.synth._base import CARD, CNS, COAG, LIVER, RENAL, RESP, band, expand, hours, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort
from core.synth.published import ALTERNATIVE_UNITS

__all__ = ["Sedation", "emit_observations"]


def _bands(
    cuts: tuple[float, ...],
    lowest: float,
    highest: float,
    insets: tuple[tuple[float, float], ...],
) -> tuple[tuple[float, float], ...]:
    """Raw-value bands per score 0..4, inside the half-open SOFA intervals of ``cuts``.

    ``cuts`` are the four cut-offs of :mod:`core.sofa` in score order (descending when a low
    value scores high, e.g. P/F); ``lowest`` / ``highest`` are the generator's outer ends and
    ``insets[score]`` the margins kept from the lower and upper end of the score's interval
    (rounded to 6 decimals so that e.g. 1.2 - 0.1 is the double 1.1).
    """
    ascending = cuts[0] < cuts[-1]
    edges = (lowest, *cuts, highest) if ascending else (highest, *cuts, lowest)
    out = []
    for score, (inset_lo, inset_hi) in enumerate(insets):
        lo, hi = sorted((edges[score], edges[score + 1]))
        out.append((round(lo + inset_lo, 6), round(hi - inset_hi, 6)))
    return tuple(out)


# bands of raw values per score 0..4 (inside the half-open SOFA intervals, with margins)
_PF_BANDS: Final = _bands(
    PAO2_FIO2_MMHG_BREAKS, 56, 520, ((10, 0), (10, 10), (10, 10), (12, 10), (0, 5))
)
_PLT_BANDS: Final = _bands(
    PLATELETS_10E3_PER_UL_BREAKS, 4, 380, ((5, 0), (2, 3), (2, 3), (1, 2), (0, 2))
)
_BILI_BANDS: Final = _bands(
    BILIRUBIN_MG_DL_BREAKS,
    0.3,
    22.0,
    ((0, 0.1), (0.06, 0.1), (0.1, 0.3), (0.2, 0.5), (0.5, 0)),
)
_CREA_BANDS: Final = _bands(
    CREATININE_MG_DL_BREAKS,
    0.5,
    8.5,
    ((0, 0.08), (0.07, 0.08), (0.08, 0.1), (0.08, 0.1), (0.1, 0)),
)
# GCS is an integer: score 0 is 15, the others [cut, next cut - 1], down to the lowest GCS
_GCS_BANDS: Final = tuple(
    (int(lo), int(hi))
    for lo, hi in _bands(
        GCS_BREAKS,
        concept("gcs_total").low,
        concept("gcs_total").high,
        ((0, 0), (0, 1), (0, 1), (0, 1), (0, 1)),
    )
)
_FIO2_GRID: Final = (0.21, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, eq=False)
class Sedation:
    """Sedation interruptions (one per sedated patient-day): patient index, start, stop (s)."""

    pat: np.ndarray
    start_s: np.ndarray
    stop_s: np.ndarray


class _Rows:
    """Collects observation rows as integer-coded arrays (no per-row Python objects)."""

    #: the observation variables of core.concepts (those of the ``biomarkers`` table excluded),
    #: in concept order (the sort's tie-break)
    VARIABLES: Final = tuple(c.name for c in OBSERVATIONS if c.name not in BIOMARKER_COLUMNS)
    #: unit spellings: each variable's canonical unit, then the sites' alternative units
    UNITS: Final = tuple(
        dict.fromkeys(
            [
                *(concept(v).unit for v in VARIABLES),
                *(ALTERNATIVE_UNITS[v] for v in VARIABLES if v in ALTERNATIVE_UNITS),
            ]
        )
    )
    #: where a value was charted (the ``source`` column: provenance, not a concept fact)
    SOURCES: Final = ("blood_gas", "ventilator", "lab", "monitor", "nursing")

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, pat, time_s, var: str, value, source: str, *, alternative=False) -> None:
        """Append rows of one variable, in its canonical unit or (``alternative``, scalar or
        per row) in the site's alternative unit :data:`~core.synth.published.ALTERNATIVE_UNITS`."""
        k = np.asarray(pat).size
        alt = np.broadcast_to(np.asarray(alternative, dtype=bool), (k,))
        unit_code = np.where(alt, self._alternative_code(var), self.UNITS.index(concept(var).unit))
        self.parts.append(
            (
                np.asarray(pat, np.int64),
                np.asarray(time_s, np.int64),
                np.full(k, self.VARIABLES.index(var), np.int64),
                np.asarray(value, float),
                unit_code.astype(np.int64),
                np.full(k, self.SOURCES.index(source), np.int64),
            )
        )

    @classmethod
    def _alternative_code(cls, var: str) -> int:
        """Code of the alternative unit of ``var`` (-1 if it has none: never charted so)."""
        alt = ALTERNATIVE_UNITS.get(var)
        return -1 if alt is None else cls.UNITS.index(alt)


def _slot_times(rng, counts: np.ndarray, lo_h: float, hi_h: float):
    """Charting offsets (hours) inside a day: k evenly spread jittered slots per owner."""
    owner, pos = expand(counts)
    k = counts[owner]
    width = (hi_h - lo_h) / k
    off = lo_h + (pos + rng.uniform(0.3, 0.9, owner.size)) * width
    return owner, pos, off


def _observations_frame(rows: _Rows, pid: np.ndarray) -> pd.DataFrame:
    """The ``observations`` table sorted by patient, time, variable (``rows`` emptied)."""
    cols = [np.concatenate([part[i] for part in rows.parts]) for i in range(6)]
    rows.parts.clear()  # free the per-variable pieces before the frame is built
    pat, time_s, var, value, unit, source = cols
    # one int64 sort key (patient, time, variable): faster than a 3-key lexsort
    rel = time_s - (time_s.min() if time_s.size else 0)
    if rel.size and int(rel.max()) >= 2**31:
        order = np.lexsort((var, time_s, pat))
    else:
        order = np.argsort((pat << 35) | (rel << 4) | var, kind="stable")
    variables = np.array(_Rows.VARIABLES, dtype=object)
    units = np.array(_Rows.UNITS, dtype=object)
    sources = np.array(_Rows.SOURCES, dtype=object)
    return pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": to_datetime(time_s[order]),
            "variable": variables[var[order]],
            "value": value[order],
            "unit": units[unit[order]],
            "source": sources[source[order]],
        },
        copy=False,  # fresh arrays: no consolidation copy (matters at 100,000 patients)
    )


def emit_observations(
    rng: np.random.Generator, ch: Charting, c: Cohort, *, dense: bool
) -> tuple[pd.DataFrame, Sedation]:
    """The ``observations`` table (MAP, GCS, blood gases, labs, lactate, urine, weight).

    The worst value of each study day lies inside the band of that day's latent score;
    ``dense`` charts several times a day. Returns the table and the sedation interruptions
    laid out around a GCS (for the ``episodes`` table).
    """
    pd_pat, pd_day, day0, cutoff = ch.pat, ch.day, ch.start_s, ch.cutoff_s
    npd = pd_pat.size
    sc, ob = ch.scores, ch.observed
    death_day = c.death_day
    si_chem, kpa, fio2_pct, plt_1e9 = ch.si_chem, ch.kpa, ch.fio2_pct, ch.plt_1e9
    country, weight = ch.country, ch.weight
    rows = _Rows()

    def keep_alive(pd_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        return t < cutoff[pd_idx] - 60

    # ---- MAP (cardiovascular; 1 if min MAP < 70) --------------------------------------------
    k_map = rng.integers(4, 7, npd) if dense else np.ones(npd, np.int64)
    own, pos, off = _slot_times(rng, k_map, 0.2, 23.8)
    worst = rng.integers(0, k_map)[own] == pos
    card = sc[own, CARD]
    wv = np.where(
        card == 0,
        rng.uniform(MAP_MMHG_SCORE1_BELOW + 2, 88, own.size),
        np.where(
            card == 1,
            rng.uniform(52, MAP_MMHG_SCORE1_BELOW - 2, own.size),
            rng.uniform(58, 82, own.size),
        ),
    )
    val = np.rint(np.where(worst, wv, wv + rng.uniform(0, 22, own.size)))
    t = day0[own] + hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "map", val[ok], "monitor")

    # ---- GCS (CNS), with a few sedation episodes ---------------------------------------------
    mv_vent_day = c.mv[pd_pat] & (pd_day <= 9) & (pd_day < np.minimum(death_day[pd_pat], 99))
    sed_pd = mv_vent_day & (rng.random(npd) < 0.04)
    k_gcs = np.where(sed_pd, 3, rng.integers(2, 4, npd) if dense else 1)
    own, pos, off = _slot_times(rng, k_gcs, 0.5, 23.5)
    g_lo = np.asarray([b[0] for b in _GCS_BANDS])[sc[:, CNS]]
    g_hi = np.asarray([b[1] for b in _GCS_BANDS])[sc[:, CNS]]
    band_v = rng.integers(g_lo, g_hi + 1)  # the day's worst GCS, inside the band
    is_sed = sed_pd[own]
    worst = np.where(is_sed, pos == 0, rng.integers(0, k_gcs)[own] == pos)
    bv = band_v[own]
    val = np.where(worst, bv, np.minimum(bv + rng.integers(0, 3, own.size), 15)).astype(float)
    # sedation day layout: GCS v at 1-3 h, sedation from +1-2 h, GCS 3 inside, stop, GCS after
    sp = np.flatnonzero(sed_pd)
    t1 = rng.uniform(1.0, 3.0, sp.size)
    s_start = t1 + rng.uniform(1.0, 2.0, sp.size)
    t2 = s_start + rng.uniform(1.0, 2.0, sp.size)
    s_stop = t2 + rng.uniform(1.0, 4.0, sp.size)
    t3 = s_stop + rng.uniform(1.0, 3.0, sp.size)
    sed_lookup = np.full(npd, -1)
    sed_lookup[sp] = np.arange(sp.size)
    j = sed_lookup[own]
    off = np.where(
        is_sed,
        np.choose(pos.clip(0, 2), [t1[j.clip(0)], t2[j.clip(0)], t3[j.clip(0)]]),
        off,
    )
    val = np.where(is_sed & (pos == 1), 3.0, val)
    t = day0[own] + hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "gcs_total", val[ok], "nursing")
    sed_start_s = day0[sp] + hours(s_start)
    sed_stop_s = day0[sp] + hours(s_stop)

    # ---- blood gases: PaO2 with FiO2 charted 5-55 min before ---------------------------------
    has_gas = ob[:, RESP]
    k_gas = np.where(has_gas, rng.choice([1, 2, 3], npd, p=[0.4, 0.4, 0.2]) if dense else 1, 0)
    own, pos, off = _slot_times(rng, k_gas, 1.5, 23.5)
    resp = sc[own, RESP]
    worst = rng.integers(0, np.maximum(k_gas, 1))[own] == pos
    pf = band(rng, resp, _PF_BANDS)
    pf = np.where(worst, pf, np.minimum(pf * rng.uniform(1.0, 1.35, own.size), 560.0))
    grid = np.asarray(_FIO2_GRID)
    lo_i = np.where(pf < 150, 8, np.where(pf < 250, 4, 0))
    hi_i = np.where(pf < 150, 12, np.where(pf < 250, 8, 6))
    fio2 = grid[rng.integers(lo_i, hi_i)]
    pao2 = np.round(pf * fio2, 1)
    t_gas = day0[own] + hours(off)
    t_fio2 = t_gas - hours(rng.uniform(5, 55, own.size) / 60.0)
    ok = keep_alive(own, t_gas)
    p = pd_pat[own]
    is_kpa = kpa[p]
    pao2_val = np.where(is_kpa, np.round(pao2 / KPA_TO_MMHG, 2), pao2)
    rows.add(p[ok], t_gas[ok], "pao2", pao2_val[ok], "blood_gas", alternative=is_kpa[ok])
    is_pct = fio2_pct[p]
    fio2_val = np.where(is_pct, np.rint(fio2 / FIO2_FRACTION_PER_PCT), fio2)
    rows.add(p[ok], t_fio2[ok], "fio2", fio2_val[ok], "ventilator", alternative=is_pct[ok])

    # ---- labs: platelets, bilirubin, creatinine drawn together 1-2x per day -----------------
    k_lab = rng.integers(1, 3, npd) if dense else np.ones(npd, np.int64)
    own, pos, off = _slot_times(rng, k_lab, 1.0, 22.0)
    p = pd_pat[own]
    t = day0[own] + hours(off)
    alive = keep_alive(own, t)
    # platelets (min is worst)
    w_idx = rng.integers(0, k_lab)
    worst = w_idx[own] == pos
    plt = np.rint(band(rng, sc[own, COAG], _PLT_BANDS))
    plt = np.where(worst, plt, np.ceil(plt * rng.uniform(1.0, 1.2, own.size)))
    ok = alive & ob[own, COAG]
    rows.add(p[ok], t[ok], "platelets", plt[ok], "lab", alternative=plt_1e9[p][ok])
    # bilirubin (max is worst)
    worst = rng.integers(0, k_lab)[own] == pos
    bili = band(rng, sc[own, LIVER], _BILI_BANDS)
    bili = np.where(worst, bili, bili * rng.uniform(0.8, 1.0, own.size))
    si = si_chem[p]
    bili_val = np.where(si, np.rint(bili * BILIRUBIN_UMOL_L_PER_MG_DL), np.round(bili, 2))
    ok = alive & ob[own, LIVER]
    rows.add(p[ok], t[ok], "bilirubin", bili_val[ok], "lab", alternative=si[ok])
    # creatinine and urine output (renal = max of both; urine drives some 3-4 days)
    renal_pd = sc[:, RENAL]
    uo_driven = (renal_pd >= 3) & (rng.random(npd) < 0.3)
    crea_score_pd = np.where(uo_driven, rng.integers(0, 3, npd), renal_pd)
    uo_total = np.where(
        uo_driven,
        np.where(
            renal_pd == 4,
            rng.uniform(40, URINE_ML_24H_SCORE4_BELOW - 40, npd),
            rng.uniform(URINE_ML_24H_SCORE4_BELOW + 35, URINE_ML_24H_SCORE3_BELOW - 100, npd),
        ),
        np.where(
            renal_pd == 4,
            rng.uniform(100, 1500, npd),
            np.where(renal_pd == 3, rng.uniform(650, 2200, npd), rng.uniform(800, 3200, npd)),
        ),
    )
    worst = rng.integers(0, k_lab)[own] == pos
    crea = band(rng, crea_score_pd[own], _CREA_BANDS)
    crea = np.where(worst, crea, crea * rng.uniform(0.85, 1.0, own.size))
    crea_val = np.where(si, np.rint(crea * CREATININE_UMOL_L_PER_MG_DL), np.round(crea, 2))
    rows.add(p[alive], t[alive], "creatinine", crea_val[alive], "lab", alternative=si[alive])
    # lactate (not scored), first lab draw of the day
    if dense:
        first = alive & (pos == 0)
        # capped at 14 mmol/L: the log-normal tail would otherwise reach implausible values
        # for some seeds (the calibration range is 0.2-15)
        lac = np.round(
            np.minimum(np.exp(rng.normal(0.6, 0.45, own.size)) * (1 + 0.25 * sc[own, CARD]), 14.0),
            1,
        )
        lac_mg = np.isin(country[p], ("Italy",))
        lac_val = np.where(lac_mg, np.round(lac * LACTATE_MG_DL_PER_MMOL_L, 1), lac)
        rows.add(p[first], t[first], "lactate", lac_val[first], "lab", alternative=lac_mg[first])

    # urine output: every 4 h (dense) or 8 h (sparse), volumes sum to the day's total
    k_uo = np.full(npd, 6 if dense else 3, np.int64)
    own, pos, _ = _slot_times(rng, k_uo, 0.0, 24.0)
    step = 24.0 / k_uo[own]
    off = (pos + 1) * step - rng.uniform(0.1, 0.5, own.size)
    share = rng.gamma(8.0, 1.0, own.size)
    tot_share = np.bincount(own, weights=share, minlength=npd)
    vol = np.rint(uo_total[own] * share / tot_share[own])
    t = day0[own] + hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "urine_output", vol[ok], "nursing")

    # weight on day 1
    d1 = np.flatnonzero(pd_day == 1)
    t = day0[d1] + hours(rng.uniform(0.2, 0.9, d1.size))
    ok = keep_alive(d1, t)
    rows.add(pd_pat[d1][ok], t[ok], "weight", weight[pd_pat[d1]][ok], "nursing")

    sedation = Sedation(pat=pd_pat[sp], start_s=sed_start_s, stop_s=sed_stop_s)
    return _observations_frame(rows, ch.pid), sedation
