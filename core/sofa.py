"""Classic SOFA score (Vincent 1996) on patient-days, vectorised.

One input row is one patient-day already reduced to the worst value of that day (clinical.md
2.8: min P/F, platelets, MAP, GCS; max bilirubin, creatinine, vasopressor rates; urine summed
and scaled to 24 h). :func:`score_sofa` scores the six organs with half-open intervals exactly
as MIMIC-IV hourly ``score/sofa.sql`` and ricu ``callback-sofa.R`` (SRC-MIMIC, SRC-RICU):

=============== ================================ ===== ===== ============== ==============
Organ           Variable (unit)                    1     2     3              4
=============== ================================ ===== ===== ============== ==============
Respiration     PaO2/FiO2 (mmHg)                 < 400 < 300 < 200 + support < 100 + support
Coagulation     platelets (10^3/uL)              < 150 < 100 < 50           < 20
Liver           bilirubin (mg/dL)                >= 1.2 >= 2.0 >= 6.0        >= 12.0
Cardiovascular  MAP (mmHg) / drugs (mcg/kg/min)  MAP < 70; dopamine > 0 or dobutamine > 0 -> 2;
                                                 dopamine > 5 or epi > 0 or norepi > 0 -> 3;
                                                 dopamine > 15 or epi > 0.1 or norepi > 0.1 -> 4
CNS             GCS                              13-14 10-12 6-9            < 6
Renal           creatinine (mg/dL) / urine       >= 1.2 >= 2.0 >= 3.5 or     >= 5.0 or
                (mL/24 h)                                      UO < 500      UO < 200
=============== ================================ ===== ===== ============== ==============

Without respiratory support the respiration score is capped at 2. A dose of 0 never scores
(every drug tier is guarded with ``> 0``; MIMIC scores a recorded 0 norepinephrine as 3,
clinical.md 2.2). A NaN never scores: a component is ``<NA>`` exactly when every input of that
organ is missing; it is never 0 and never 4 by accident.

References
----------
SRC-VINCENT: Vincent JL et al. Intensive Care Med 1996;22:707-710.
SRC-SEP3: Singer M et al. JAMA 2016;315:801-810, Table 1.
SRC-MIMIC: MIT-LCP/mimic-code ``mimic-iv/concepts/score/sofa.sql``.
SRC-RICU: eth-mds/ricu ``R/callback-sofa.R``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from core.concepts import SCORED_DRUGS
from core.exceptions import DataValidationError, Problem
from core.rules import SofaRules
from core.vocab import SOFA_COLUMNS, SOFA_INPUT_COLUMNS, SOFA_TOTAL, Organ

# --- cut-offs, half-open [lower, next_lower) (clinical.md 2.8; SRC-VINCENT, SRC-RICU) ---------
#: respiration: P/F < 400 -> 1, < 300 -> 2, < 200 with support -> 3, < 100 with support -> 4
PAO2_FIO2_MMHG_BREAKS: Final = (400.0, 300.0, 200.0, 100.0)
#: coagulation: platelets < 150 -> 1, < 100 -> 2, < 50 -> 3, < 20 -> 4
PLATELETS_10E3_PER_UL_BREAKS: Final = (150.0, 100.0, 50.0, 20.0)
#: liver: bilirubin >= 1.2 -> 1, >= 2.0 -> 2, >= 6.0 -> 3, >= 12.0 -> 4
BILIRUBIN_MG_DL_BREAKS: Final = (1.2, 2.0, 6.0, 12.0)
#: CNS: GCS < 15 -> 1, < 13 -> 2, < 10 -> 3, < 6 -> 4
GCS_BREAKS: Final = (15.0, 13.0, 10.0, 6.0)
#: renal: creatinine >= 1.2 -> 1, >= 2.0 -> 2, >= 3.5 -> 3, >= 5.0 -> 4
CREATININE_MG_DL_BREAKS: Final = (1.2, 2.0, 3.5, 5.0)
#: renal: urine output < 500 mL/24 h -> 3, < 200 mL/24 h -> 4
URINE_ML_24H_SCORE3_BELOW: Final = 500.0
URINE_ML_24H_SCORE4_BELOW: Final = 200.0
#: cardiovascular: MAP < 70 mmHg -> 1
MAP_MMHG_SCORE1_BELOW: Final = 70.0
#: cardiovascular drug thresholds (mcg/kg/min, for at least 1 h; the 1-h rule is applied upstream
#: in core.derive): dopamine > 5 -> 3, > 15 -> 4; epinephrine / norepinephrine > 0.1 -> 4
DOPAMINE_SCORE3_ABOVE: Final = 5.0
DOPAMINE_SCORE4_ABOVE: Final = 15.0
CATECHOLAMINE_SCORE4_ABOVE: Final = 0.1
#: printed SI bands of the original table (clinical.md 5.2): lower-closed, the top band is "> x"
BILIRUBIN_UMOL_L_PRINTED_BANDS: Final = (20.0, 33.0, 102.0)
BILIRUBIN_UMOL_L_PRINTED_SCORE4_ABOVE: Final = 204.0
CREATININE_UMOL_L_PRINTED_BANDS: Final = (110.0, 171.0, 300.0)
CREATININE_UMOL_L_PRINTED_SCORE4_ABOVE: Final = 440.0

COMPONENT_COLUMNS: Final = tuple(SOFA_COLUMNS[o] for o in Organ)


def _float(days: pd.DataFrame, col: str) -> np.ndarray:
    """Column as float64 ndarray with NaN for missing (zero-copy for float64 columns)."""
    s = days[col]
    if s.dtype.kind == "f":
        return s.to_numpy()
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _bool(days: pd.DataFrame, col: str) -> np.ndarray:
    """Column as bool ndarray; missing counts as False."""
    s = days[col]
    if s.dtype == bool:
        return s.to_numpy()
    return s.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _count_below(x: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    """Number of breaks that ``x`` is strictly below (NaN -> 0; mask NaN separately)."""
    out = (x < breaks[0]).view(np.int8).copy()
    for b in breaks[1:]:
        out += (x < b).view(np.int8)
    return out


def _count_at_or_above(x: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    """Number of breaks that ``x`` is at or above (NaN -> 0; mask NaN separately)."""
    out = (x >= breaks[0]).view(np.int8).copy()
    for b in breaks[1:]:
        out += (x >= b).view(np.int8)
    return out


def score_respiration(pf: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Respiration points 0-4 (int8) from P/F (mmHg) and support (bool); NaN P/F -> 0.

    Scores 3-4 need respiratory support; without support the score is capped at 2
    (SRC-VINCENT, SRC-MIMIC, SRC-RICU).
    """
    b = PAO2_FIO2_MMHG_BREAKS
    out = (pf < b[0]).view(np.int8) + (pf < b[1]).view(np.int8)
    extra = (pf < b[2]).view(np.int8) + (pf < b[3]).view(np.int8)
    return out + extra * support.view(np.int8)


def drug_tiers(drug: str) -> tuple[tuple[float, int], ...]:
    """Points one agent earns alone: ``((above, points), ...)``, ascending.

    A rate strictly above ``above`` (mcg/kg/min) earns ``points``; the highest tier reached
    counts. Built from the module constants at call time (so the scorer, the provenance texts
    and any display stay on the same numbers): dopamine ``> 0`` -> 2, ``>``
    :data:`DOPAMINE_SCORE3_ABOVE` -> 3, ``>`` :data:`DOPAMINE_SCORE4_ABOVE` -> 4; dobutamine
    ``> 0`` -> 2; epinephrine / norepinephrine ``> 0`` -> 3, ``>``
    :data:`CATECHOLAMINE_SCORE4_ABOVE` -> 4 (SRC-VINCENT, clinical.md 2.8).

    Raises
    ------
    ValueError
        ``drug`` is not in :data:`SCORED_DRUGS`.
    """
    if drug == "dopamine":
        return ((0.0, 2), (DOPAMINE_SCORE3_ABOVE, 3), (DOPAMINE_SCORE4_ABOVE, 4))
    if drug == "dobutamine":
        return ((0.0, 2),)
    if drug in ("epinephrine", "norepinephrine"):
        return ((0.0, 3), (CATECHOLAMINE_SCORE4_ABOVE, 4))
    raise ValueError(f"drug must be one of {', '.join(SCORED_DRUGS)}, got {drug!r}")


def drug_points(drug: str, rate_mcg_kg_min: object) -> np.ndarray:
    """Cardiovascular points (int8, 0-4) that one agent earns alone at the given rate(s).

    Parameters
    ----------
    drug
        One of :data:`SCORED_DRUGS`.
    rate_mcg_kg_min
        Rate(s) in mcg/kg/min (scalar or array); a 0 or NaN rate never scores.

    Returns
    -------
    ndarray
        int8 points of the same shape, from :func:`drug_tiers` (every tier is ``rate > x``).
    """
    x = np.asarray(rate_mcg_kg_min, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.int8)
    for above, points in drug_tiers(drug):
        out[x > above] = points
    return out


def score_cardiovascular(
    map_mmhg: np.ndarray,
    dopamine: np.ndarray,
    dobutamine: np.ndarray,
    epinephrine: np.ndarray,
    norepinephrine: np.ndarray,
) -> np.ndarray:
    """Cardiovascular points 0-4 (int8): the worst of the per-agent tiers and MAP.

    Each agent scores by :func:`drug_points` (a NaN or a zero dose never scores); MAP below
    :data:`MAP_MMHG_SCORE1_BELOW` scores 1 (SRC-VINCENT, clinical.md 2.8).
    """
    out = (map_mmhg < MAP_MMHG_SCORE1_BELOW).astype(np.int8)
    for drug, rate in (
        ("dopamine", dopamine),
        ("dobutamine", dobutamine),
        ("epinephrine", epinephrine),
        ("norepinephrine", norepinephrine),
    ):
        np.maximum(out, drug_points(drug, rate), out=out)
    return out


def score_creatinine(creatinine: np.ndarray) -> np.ndarray:
    """Renal points 0-4 (int8) from creatinine alone (mg/dL, :data:`CREATININE_MG_DL_BREAKS`)."""
    return _count_at_or_above(creatinine, CREATININE_MG_DL_BREAKS)


def score_urine_output(urine_ml_24h: np.ndarray) -> np.ndarray:
    """Renal points 0, 3 or 4 (int8) from urine output alone (mL/24 h); NaN -> 0."""
    out = (urine_ml_24h < URINE_ML_24H_SCORE3_BELOW).view(np.int8) * np.int8(3)
    out += (urine_ml_24h < URINE_ML_24H_SCORE4_BELOW).view(np.int8)
    return out


def score_renal(creatinine: np.ndarray, urine_ml_24h: np.ndarray) -> np.ndarray:
    """Renal points 0-4 (int8): the worse of the creatinine and the urine-output score."""
    return np.maximum(score_creatinine(creatinine), score_urine_output(urine_ml_24h))


def _si_band(x: np.ndarray, bands: tuple[float, ...], score4_above: float) -> np.ndarray:
    return _count_at_or_above(x, bands) + (x > score4_above).view(np.int8)


def _require(days: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in days.columns]
    if missing:
        raise DataValidationError(
            Problem(where, None, c, None, "a column of this name (NaN = not measured)")
            for c in missing
        )


def _nullable(values: np.ndarray, missing: np.ndarray, index: pd.Index) -> pd.Series:
    values = values.astype(np.int8, copy=False)
    return pd.Series(pd.arrays.IntegerArray(values, missing.copy()), index=index, copy=False)


def score_sofa(days: pd.DataFrame, *, rules: SofaRules = SofaRules()) -> pd.DataFrame:
    """Score classic SOFA (Vincent 1996) on patient-days.

    Parameters
    ----------
    days
        One row per patient-day, worst value of the day, NaN = not measured. Columns
        (:data:`core.vocab.SOFA_INPUT_COLUMNS`): ``pao2_fio2_mmhg`` (mmHg),
        ``respiratory_support`` (bool; missing = no support), ``platelets_10e3_per_ul``,
        ``bilirubin_mg_dl``, ``map_mmhg``, ``dopamine_mcg_kg_min``, ``dobutamine_mcg_kg_min``,
        ``epinephrine_mcg_kg_min``, ``norepinephrine_mcg_kg_min`` (highest qualifying rate;
        0 or NaN = none), ``gcs_total`` (3-15), ``creatinine_mg_dl``, ``urine_output_ml_24h``.
        Optional: ``bilirubin_umol_l`` / ``creatinine_umol_l`` (the value as received in
        umol/L), used only when ``rules.si_units_cutoffs == "use_printed_si_bands"``.
        Other columns pass through untouched.
    rules
        :class:`core.rules.SofaRules`; uses ``missing_total`` and ``si_units_cutoffs``.

    Returns
    -------
    DataFrame
        A new frame, same index: the input columns plus ``sofa_respiration``,
        ``sofa_coagulation``, ``sofa_liver``, ``sofa_cardiovascular``, ``sofa_cns``,
        ``sofa_renal`` (``Int8``, 0-4) and ``sofa_total`` (``Int8``, 0-24). For speed the
        input columns are a shallow copy (shared buffers, as with pandas copy-on-write): adding
        or replacing columns of the result never touches ``days``; call ``.copy()`` before
        writing *into* the passed-through columns in place.

    Notes
    -----
    Missing data: a component is ``<NA>`` where every input of its organ is missing (a recorded
    zero dose is an input: "no vasopressor"). ``sofa_total`` is the sum of the components
    present (a missing component counts 0, as MIMIC and ricu do, SRC-MIMIC, SRC-RICU), or
    ``<NA>`` if any component is missing when ``rules.missing_total == "nan_if_any_missing"``.
    The day-level policy (0 on day 1, LOCF afterwards) is applied by
    :func:`core.derive.fill_trajectory`, not here. The input is never mutated.

    With ``use_printed_si_bands``, a row whose ``bilirubin_umol_l`` (``creatinine_umol_l``) is
    present is scored on the printed SI bands of clinical.md 5.2 (bilirubin 20/33/102/>204,
    creatinine 110/171/300/>440 umol/L) instead of the converted mg/dL value.
    """
    _require(days, SOFA_INPUT_COLUMNS, "score_sofa input")
    pf = _float(days, "pao2_fio2_mmhg")
    support = _bool(days, "respiratory_support")
    plt = _float(days, "platelets_10e3_per_ul")
    bili = _float(days, "bilirubin_mg_dl")
    mapv = _float(days, "map_mmhg")
    dopa = _float(days, "dopamine_mcg_kg_min")
    dobu = _float(days, "dobutamine_mcg_kg_min")
    epi = _float(days, "epinephrine_mcg_kg_min")
    ne = _float(days, "norepinephrine_mcg_kg_min")
    gcs = _float(days, "gcs_total")
    creat = _float(days, "creatinine_mg_dl")
    urine = _float(days, "urine_output_ml_24h")

    resp = score_respiration(pf, support)
    coag = _count_below(plt, PLATELETS_10E3_PER_UL_BREAKS)
    liver = _count_at_or_above(bili, BILIRUBIN_MG_DL_BREAKS)
    cv = score_cardiovascular(mapv, dopa, dobu, epi, ne)
    cns = _count_below(gcs, GCS_BREAKS)
    renal = score_renal(creat, urine)

    na_bili = np.isnan(bili)
    na_creat = np.isnan(creat)
    if rules.si_units_cutoffs == "use_printed_si_bands":
        if "bilirubin_umol_l" in days:
            si = _float(days, "bilirubin_umol_l")
            has = ~np.isnan(si)
            band = _si_band(
                si, BILIRUBIN_UMOL_L_PRINTED_BANDS, BILIRUBIN_UMOL_L_PRINTED_SCORE4_ABOVE
            )
            liver = np.where(has, band, liver)
            na_bili = na_bili & ~has
        if "creatinine_umol_l" in days:
            si = _float(days, "creatinine_umol_l")
            has = ~np.isnan(si)
            band = _si_band(
                si, CREATININE_UMOL_L_PRINTED_BANDS, CREATININE_UMOL_L_PRINTED_SCORE4_ABOVE
            )
            urine_score = score_renal(np.full_like(si, np.nan), urine)
            renal = np.where(has, np.maximum(band, urine_score), renal)
            na_creat = na_creat & ~has

    missing = {
        Organ.RESPIRATION: np.isnan(pf),
        Organ.COAGULATION: np.isnan(plt),
        Organ.LIVER: na_bili,
        Organ.CARDIOVASCULAR: np.isnan(mapv)
        & np.isnan(dopa)
        & np.isnan(dobu)
        & np.isnan(epi)
        & np.isnan(ne),
        Organ.CNS: np.isnan(gcs),
        Organ.RENAL: na_creat & np.isnan(urine),
    }
    points = {
        Organ.RESPIRATION: resp,
        Organ.COAGULATION: coag,
        Organ.LIVER: liver,
        Organ.CARDIOVASCULAR: cv,
        Organ.CNS: cns,
        Organ.RENAL: renal,
    }
    n = len(days)
    total = np.zeros(n, dtype=np.int8)
    any_missing = np.zeros(n, dtype=bool)
    nan_if_any = rules.missing_total == "nan_if_any_missing"
    scored: dict[str, pd.arrays.IntegerArray] = {}
    for organ in Organ:
        # every scorer gives 0 when all its inputs are NaN (NaN comparisons are False), so the
        # points under the mask are already 0 and the plain sum is the "sum of present" total
        miss = missing[organ]
        pts = points[organ]
        total += pts
        if nan_if_any:
            any_missing |= miss
        scored[SOFA_COLUMNS[organ]] = pd.arrays.IntegerArray(pts, miss)
    scored[SOFA_TOTAL] = pd.arrays.IntegerArray(total, any_missing)
    # one concat instead of seven column insertions (each insertion rebuilds the block index);
    # existing columns of the same name are replaced, as assignment would
    kept = (
        days.drop(columns=[c for c in scored if c in days.columns])
        if any(c in days.columns for c in scored)
        else days
    )
    new = pd.DataFrame(scored, index=days.index, copy=False)
    return pd.concat([kept, new], axis=1, copy=False)


# --- reference scorer (bench baseline and property-test cross-check) ---------------------------


def _nan(x: object) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _row_score(r: dict[str, object]) -> dict[str, int | None]:
    """Score one patient-day with plain Python ``if`` chains (same semantics as score_sofa)."""

    def f(name: str) -> float | None:
        v = r.get(name)
        return None if _nan(v) else float(v)  # type: ignore[arg-type]

    def below(x: float, breaks: tuple[float, ...]) -> int:
        return sum(1 for b in breaks if x < b)

    def at_or_above(x: float, breaks: tuple[float, ...]) -> int:
        return sum(1 for b in breaks if x >= b)

    out: dict[str, int | None] = {}
    pf, support = f("pao2_fio2_mmhg"), bool(r.get("respiratory_support") is True)
    pf_b = PAO2_FIO2_MMHG_BREAKS
    if pf is None:
        out["respiration"] = None
    elif pf < pf_b[3] and support:
        out["respiration"] = 4
    elif pf < pf_b[2] and support:
        out["respiration"] = 3
    elif pf < pf_b[1]:
        out["respiration"] = 2
    elif pf < pf_b[0]:
        out["respiration"] = 1
    else:
        out["respiration"] = 0
    plt = f("platelets_10e3_per_ul")
    out["coagulation"] = None if plt is None else below(plt, PLATELETS_10E3_PER_UL_BREAKS)
    bili = f("bilirubin_mg_dl")
    out["liver"] = None if bili is None else at_or_above(bili, BILIRUBIN_MG_DL_BREAKS)
    mp, dopa, dobu = f("map_mmhg"), f("dopamine_mcg_kg_min"), f("dobutamine_mcg_kg_min")
    epi, ne = f("epinephrine_mcg_kg_min"), f("norepinephrine_mcg_kg_min")
    if mp is None and dopa is None and dobu is None and epi is None and ne is None:
        out["cardiovascular"] = None
    else:
        dopa, dobu, epi, ne = dopa or 0.0, dobu or 0.0, epi or 0.0, ne or 0.0
        cat4 = CATECHOLAMINE_SCORE4_ABOVE
        if dopa > DOPAMINE_SCORE4_ABOVE or epi > cat4 or ne > cat4:
            out["cardiovascular"] = 4
        elif dopa > DOPAMINE_SCORE3_ABOVE or epi > 0 or ne > 0:
            out["cardiovascular"] = 3
        elif dopa > 0 or dobu > 0:
            out["cardiovascular"] = 2
        elif mp is not None and mp < MAP_MMHG_SCORE1_BELOW:
            out["cardiovascular"] = 1
        else:
            out["cardiovascular"] = 0
    gcs = f("gcs_total")
    out["cns"] = None if gcs is None else below(gcs, GCS_BREAKS)
    cr, uo = f("creatinine_mg_dl"), f("urine_output_ml_24h")
    if cr is None and uo is None:
        out["renal"] = None
    else:
        s = 0 if cr is None else at_or_above(cr, CREATININE_MG_DL_BREAKS)
        if uo is not None and uo < URINE_ML_24H_SCORE4_BELOW:
            s = 4
        elif uo is not None and uo < URINE_ML_24H_SCORE3_BELOW:
            s = max(s, 3)
        out["renal"] = s
    return out


def score_sofa_rowwise(days: pd.DataFrame) -> pd.DataFrame:
    """Straightforward row-by-row reference scorer (default rules, ``sum_present`` total).

    Same semantics as :func:`score_sofa` (SRC-VINCENT, clinical.md 2.8) written as plain ``if``
    chains over ``DataFrame.to_dict("records")``; used as the benchmark baseline and as a
    cross-check in the property tests. Returns only the seven score columns (``Int8``).
    """
    _require(days, SOFA_INPUT_COLUMNS, "score_sofa_rowwise input")
    rows = [_row_score(r) for r in days[list(SOFA_INPUT_COLUMNS)].to_dict("records")]
    data: dict[str, list[int | None]] = {SOFA_COLUMNS[o]: [r[o.value] for r in rows] for o in Organ}
    data[SOFA_TOTAL] = [sum(v for v in r.values() if v is not None) for r in rows]
    return pd.DataFrame(data, index=days.index).astype("Int8")


# --- Sepsis-3 -------------------------------------------------------------------------------


def sepsis3_check(
    daily: pd.DataFrame, *, min_rise: int = 2, baseline: str = "day1"
) -> pd.DataFrame:
    """Sepsis-3 organ-dysfunction check: acute rise of total SOFA >= 2 from baseline.

    Parameters
    ----------
    daily
        ``patient_id, study_day, sofa_total`` (e.g. ``DailySofa.daily``).
    min_rise
        Rise in total SOFA points that defines organ dysfunction (SRC-SEP3: >= 2).
    baseline
        ``"day1"``: the total on the patient's first study day (missing -> 0) is the baseline and
        the rise is looked for on later days; ``"zero"``: baseline 0 for patients not known to
        have pre-existing organ dysfunction (SRC-SEP3), every day including day 1 is checked.

    Returns
    -------
    DataFrame
        One row per patient (index ``patient_id``): ``baseline_sofa_total``,
        ``max_rise_points`` (``Int64``), ``sepsis3_study_day`` (first study day whose total is
        >= baseline + ``min_rise``; ``<NA>`` if never) and ``sepsis3`` (bool).

    Notes
    -----
    A missing total never counts as a rise. SRC-SEP3 Table 1 / definition box; the ImmunoSep
    operationalisation for inpatients is the same rise from the admission SOFA (SRC-CTGOV).
    """
    if baseline not in ("day1", "zero"):
        raise ValueError(f"baseline must be 'day1' or 'zero', got {baseline!r}")
    d = daily[["patient_id", "study_day", SOFA_TOTAL]].sort_values(["patient_id", "study_day"])
    total = pd.to_numeric(d[SOFA_TOTAL], errors="coerce").astype("float64")
    first_day = d.groupby("patient_id", sort=False)["study_day"].transform("min")
    is_first = (d["study_day"] == first_day).to_numpy()
    if baseline == "day1":
        base_per_row = total.where(pd.Series(is_first, index=d.index)).fillna(0.0)
        base = base_per_row.groupby(d["patient_id"], sort=False).transform("max")
        # only rows with a day-1 total contribute; a missing day-1 total counts 0
        candidate = ~is_first
    else:
        base = pd.Series(0.0, index=d.index)
        candidate = np.ones(len(d), dtype=bool)
    rise = total - base
    hit = (rise >= min_rise).to_numpy() & candidate
    rise_eligible = rise.where(pd.Series(candidate, index=d.index))
    grouped = pd.DataFrame(
        {
            "patient_id": d["patient_id"].to_numpy(),
            "base": base.to_numpy(),
            "rise": rise_eligible.to_numpy(),
            "hit_day": np.where(hit, d["study_day"].to_numpy(dtype=np.float64), np.nan),
        }
    ).groupby("patient_id", sort=True)
    out = pd.DataFrame(
        {
            "baseline_sofa_total": grouped["base"].first().astype("Int64"),
            "max_rise_points": grouped["rise"].max().round().astype("Int64"),
            "sepsis3_study_day": grouped["hit_day"].min().astype("Int64"),
        }
    )
    out["sepsis3"] = out["sepsis3_study_day"].notna().to_numpy()
    return out
