"""Immune phenotype (MALS / SIP) from ferritin and monocyte HLA-DR, over time and reversal.

Rules (clinical.md §1.3, "implement exactly"; SRC-JAMA-ABS, SRC-CTGOV, SRC-AUDIT):

* **MALS** if ferritin > 4420 ng/mL (strictly greater) — wins when both states hold;
* **SIP** if ferritin ≤ 4420 ng/mL and HLA-DR < 5000 AB/C (antibodies bound per CD45/CD14
  monocyte, strictly less);
* **not eligible** if ferritin ≤ 4420 and HLA-DR ≥ 5000;
* **pending HLA-DR** if ferritin ≤ 4420 and HLA-DR is missing;
* **unknown** if ferritin is missing (whatever the HLA-DR).

Reversal (clinical.md §1.6 "SIDF", SRC-AUDIT): SIP reversal = HLA-DR > 8000 with ferritin
< 4420; MALS reversal = ferritin fall ≥ 15 % from the baseline (first) ferritin — the
reference value is [U] and kept configurable in :class:`core.rules.PhenotypeThresholds`.

Near-threshold flag: a value within the assay variability of a threshold that decides the
call (ferritin ± 10 %, HLA-DR ± 15 %, SRC-HLADR inter-laboratory CV 15–25 %). The bands are
closed: ferritin 3978 and 4862 are near 4420, 3977.9 is not. The HLA-DR band only matters
while ferritin ≤ 4420 (for a MALS call HLA-DR does not decide anything).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.exceptions import DataValidationError, Problem
from core.rules import PhenotypeThresholds
from core.vocab import Phenotype

__all__ = [
    "Classification",
    "classify",
    "classify_frame",
    "immune_reversal",
    "phenotype_over_time",
    "reversal_subset",
    "shift_summary",
]

_DEFAULT = PhenotypeThresholds()
_REL_EPS = 1e-12  # float slack so that exactly-on-the-band-edge values count as near


@dataclass(frozen=True)
class Classification:
    """One immune classification with the reason in words (docs/conventions.md §5)."""

    phenotype: Phenotype
    reason: str
    near_threshold: bool
    ferritin_ng_ml: float | None
    hla_dr_ab_per_cell: float | None


def _num(x: float) -> str:
    """Short number for a reason text: 6120 → '6120', 4420.1 → '4420.1'."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _missing(x: object) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return math.isnan(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected a number or None, got {x!r}") from exc


def _near(x: float, threshold: float, fraction: float) -> bool:
    return abs(x - threshold) <= fraction * threshold * (1 + _REL_EPS)


def _check_value(x: float, name: str) -> float:
    x = float(x)
    if x < 0 or math.isinf(x):
        raise ValueError(f"{name} must be a finite non-negative number, got {x}")
    return x


def classify(
    ferritin_ng_ml: float | None,
    hla_dr_ab_per_cell: float | None,
    *,
    thresholds: PhenotypeThresholds = _DEFAULT,
) -> Classification:
    """Classify one sample (clinical.md §1.3; SRC-JAMA-ABS, SRC-CTGOV).

    Parameters
    ----------
    ferritin_ng_ml
        Serum ferritin in ng/mL (= µg/L); None or NaN when missing.
    hla_dr_ab_per_cell
        Monocyte HLA-DR, antibodies bound per CD45/CD14 monocyte (BD Quantibrite); None or
        NaN when missing.
    thresholds
        Frozen thresholds (:class:`core.rules.PhenotypeThresholds`).

    Returns
    -------
    Classification
        Phenotype, the reason in words (e.g. ``"ferritin 6120 ng/mL > 4420"``) and the
        near-threshold flag.

    Notes
    -----
    NaN is tested explicitly: ``NaN < 5000`` is False and would otherwise fall through to
    "not eligible" (docs/conventions.md §5). Negative or infinite values raise ``ValueError``.
    """
    f_thr = thresholds.ferritin_mals_above_ng_ml
    h_thr = thresholds.hla_dr_sip_below_ab_per_cell
    f = None if _missing(ferritin_ng_ml) else _check_value(ferritin_ng_ml, "ferritin")  # type: ignore[arg-type]
    h = None if _missing(hla_dr_ab_per_cell) else _check_value(hla_dr_ab_per_cell, "HLA-DR")  # type: ignore[arg-type]
    if f is None:
        return Classification(Phenotype.UNKNOWN, "ferritin missing", False, None, h)
    f_near = _near(f, f_thr, thresholds.ferritin_near_fraction)
    if f > f_thr:
        reason = f"ferritin {_num(f)} ng/mL > {_num(f_thr)}"
        if h is not None and h < h_thr:
            reason += f" (HLA-DR {_num(h)} AB/C < {_num(h_thr)} too; MALS takes precedence)"
        return Classification(Phenotype.MALS, reason, f_near, f, h)
    base = f"ferritin {_num(f)} ng/mL ≤ {_num(f_thr)}"
    if h is None:
        return Classification(Phenotype.PENDING, f"{base}; HLA-DR missing", f_near, f, None)
    near = f_near or _near(h, h_thr, thresholds.hla_dr_near_fraction)
    if h < h_thr:
        return Classification(
            Phenotype.SIP, f"{base} and HLA-DR {_num(h)} AB/C < {_num(h_thr)}", near, f, h
        )
    return Classification(
        Phenotype.NOT_ELIGIBLE, f"{base} and HLA-DR {_num(h)} AB/C ≥ {_num(h_thr)}", near, f, h
    )


def classify_frame(
    df: pd.DataFrame,
    *,
    thresholds: PhenotypeThresholds = _DEFAULT,
    ferritin_col: str = "ferritin_ng_ml",
    hla_dr_col: str = "hla_dr_ab_per_cell",
) -> pd.DataFrame:
    """Vectorised :func:`classify` (same rules, same reason texts).

    Returns
    -------
    DataFrame
        Same index as ``df``; columns ``phenotype`` (str values of
        :class:`core.vocab.Phenotype`), ``phenotype_reason``, ``near_threshold``.
    """
    f = pd.to_numeric(df[ferritin_col], errors="raise").astype(float).to_numpy()
    h = pd.to_numeric(df[hla_dr_col], errors="raise").astype(float).to_numpy()
    for arr, name, col in ((f, "ferritin", ferritin_col), (h, "HLA-DR", hla_dr_col)):
        bad = (arr < 0) | np.isinf(arr)
        if bad.any():
            raise DataValidationError(
                [
                    Problem("biomarkers", int(i) + 1, col, float(arr[i]), f"{name} ≥ 0, finite")
                    for i in np.flatnonzero(bad)[:20]
                ]
            )
    f_thr = thresholds.ferritin_mals_above_ng_ml
    h_thr = thresholds.hla_dr_sip_below_ab_per_cell
    f_na, h_na = np.isnan(f), np.isnan(h)
    with np.errstate(invalid="ignore"):
        mals = ~f_na & (f > f_thr)
        low_f = ~f_na & ~mals
        pending = low_f & h_na
        sip = low_f & ~h_na & (h < h_thr)
        noel = low_f & ~h_na & ~(h < h_thr)
        f_near = ~f_na & (
            np.abs(f - f_thr) <= thresholds.ferritin_near_fraction * f_thr * (1 + _REL_EPS)
        )
        h_near = ~h_na & (
            np.abs(h - h_thr) <= thresholds.hla_dr_near_fraction * h_thr * (1 + _REL_EPS)
        )
    phenotype = np.select(
        [f_na, mals, pending, sip, noel],
        [
            p.value
            for p in (
                Phenotype.UNKNOWN,
                Phenotype.MALS,
                Phenotype.PENDING,
                Phenotype.SIP,
                Phenotype.NOT_ELIGIBLE,
            )
        ],
        default=Phenotype.UNKNOWN.value,
    )
    near = f_near | (h_near & (sip | noel))

    fs = np.array([_num(x) if not math.isnan(x) else "" for x in f], dtype=object)
    hs = np.array([_num(x) if not math.isnan(x) else "" for x in h], dtype=object)
    ft, ht = _num(f_thr), _num(h_thr)
    reason = np.full(len(f), "ferritin missing", dtype=object)
    mals_r = "ferritin " + fs + f" ng/mL > {ft}"
    mals_both = mals & ~h_na & (h < h_thr)
    mals_r = np.where(
        mals_both, mals_r + " (HLA-DR " + hs + f" AB/C < {ht} too; MALS takes precedence)", mals_r
    )
    base = "ferritin " + fs + f" ng/mL ≤ {ft}"
    reason = np.where(mals, mals_r, reason)
    reason = np.where(pending, base + "; HLA-DR missing", reason)
    reason = np.where(sip, base + " and HLA-DR " + hs + f" AB/C < {ht}", reason)
    reason = np.where(noel, base + " and HLA-DR " + hs + f" AB/C ≥ {ht}", reason)
    return pd.DataFrame(
        {"phenotype": phenotype.astype(object), "phenotype_reason": reason, "near_threshold": near},
        index=df.index,
    )


def _time_column(biomarkers: pd.DataFrame, time_col: str | None) -> str:
    if time_col is not None:
        return time_col
    for c in ("study_day", "time"):
        if c in biomarkers.columns:
            return c
    raise DataValidationError(
        [Problem("biomarkers", None, "time", None, "a 'study_day' or 'time' column")]
    )


def phenotype_over_time(
    biomarkers: pd.DataFrame,
    *,
    thresholds: PhenotypeThresholds = _DEFAULT,
    time_col: str | None = None,
) -> pd.DataFrame:
    """Phenotype of every sample, with shifts and reversal flags against the first sample.

    Parameters
    ----------
    biomarkers
        ``patient_id``, ``study_day`` or ``time``, ``ferritin_ng_ml``, ``hla_dr_ab_per_cell``.
    time_col
        Ordering column; default ``study_day`` if present, else ``time``.

    Returns
    -------
    DataFrame
        Input columns sorted by patient and time, plus ``sample_index`` (0 = baseline, the
        first sample), ``phenotype``, ``phenotype_reason``, ``near_threshold``,
        ``baseline_phenotype``, ``baseline_ferritin_ng_ml``, ``previous_phenotype``,
        ``phenotype_shift`` (e.g. ``"MALS→SIP"`` when the phenotype differs from the previous
        sample, else None), ``ferritin_change_fraction`` (vs baseline; −0.2 = 20 % fall),
        ``sip_reversal`` (HLA-DR > 8000 and ferritin < 4420), ``mals_reversal`` (ferritin fall
        ≥ 15 % from baseline ferritin), ``reversal`` (the flag that fits the baseline
        phenotype). Reversal flags are False on the baseline sample and when a needed value
        is missing (clinical.md §1.6, SRC-AUDIT; reference value [U]).
    """
    tcol = _time_column(biomarkers, time_col)
    b = biomarkers.sort_values(["patient_id", tcol], kind="stable").reset_index(drop=True)
    b = b.join(classify_frame(b, thresholds=thresholds))
    grp = b.groupby("patient_id", sort=False)
    b["sample_index"] = grp.cumcount()
    # the first sample of each patient, by position (not "first non-missing"): rows are sorted
    # by patient, so group k (in order of appearance) starts at the k-th sample_index == 0
    first_rows = np.flatnonzero(b["sample_index"].to_numpy() == 0)
    first_of_row = first_rows[grp.ngroup().to_numpy()] if len(b) else first_rows
    b["baseline_phenotype"] = b["phenotype"].to_numpy(dtype=object)[first_of_row]
    b["baseline_ferritin_ng_ml"] = b["ferritin_ng_ml"].to_numpy(dtype=float)[first_of_row]
    b["previous_phenotype"] = grp["phenotype"].shift(1)
    changed = b["previous_phenotype"].notna() & (b["phenotype"] != b["previous_phenotype"])
    b["phenotype_shift"] = np.where(
        changed, b["previous_phenotype"].astype(str) + "→" + b["phenotype"].astype(str), None
    )
    f = b["ferritin_ng_ml"].astype(float)
    h = b["hla_dr_ab_per_cell"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = (f - b["baseline_ferritin_ng_ml"]) / b["baseline_ferritin_ng_ml"]
    b["ferritin_change_fraction"] = change.where(b["baseline_ferritin_ng_ml"] > 0)
    later = b["sample_index"] > 0
    b["sip_reversal"] = (
        later
        & (h > thresholds.hla_dr_reversal_above_ab_per_cell).fillna(False)
        & (f < thresholds.ferritin_mals_above_ng_ml).fillna(False)
    ).astype(bool)
    fall = -b["ferritin_change_fraction"]
    b["mals_reversal"] = (
        later & (fall >= thresholds.ferritin_reversal_fall_fraction * (1 - _REL_EPS)).fillna(False)
    ).astype(bool)
    base = b["baseline_phenotype"]
    b["reversal"] = np.where(
        base == Phenotype.MALS.value,
        b["mals_reversal"],
        np.where(base == Phenotype.SIP.value, b["sip_reversal"], False),
    ).astype(bool)
    return b


def immune_reversal(
    biomarkers: pd.DataFrame,
    baseline_phenotype: pd.Series | pd.DataFrame,
    *,
    by_day: int = 28,
    thresholds: PhenotypeThresholds = _DEFAULT,
) -> pd.DataFrame:
    """Reversal of sepsis-induced immune dysfunction per patient (clinical.md §1.6, SRC-AUDIT).

    Parameters
    ----------
    biomarkers
        ``patient_id``, ``study_day``, ``ferritin_ng_ml``, ``hla_dr_ab_per_cell``: every
        sample of the patients, the screening sample before the first dose (study day ≤ 0)
        included. The first sample is the baseline (the sample the randomisation phenotype
        comes from). Samples after ``by_day`` are not used for the reversal; they still make
        a patient part of the sampling subset. Rows without a study day are ignored.
    baseline_phenotype
        The randomisation phenotype: a Series indexed by ``patient_id`` or a DataFrame with
        ``patient_id`` and ``phenotype``. It defines the patients and which rule applies
        (MALS: ferritin fall ≥ 15 % from baseline; SIP: HLA-DR > 8000 with ferritin < 4420).
    by_day
        Follow-up limit. The report uses day 28 (Table 2, eFigure 6); the SAP wording is day
        15 — both [S], choose here.

    Returns
    -------
    DataFrame
        One row per patient (sorted by id): ``patient_id``, ``baseline_phenotype``,
        ``in_sampling_subset`` (a MALS/SIP baseline and at least one sample after the
        baseline, on any day: serial blood sampling), ``n_samples`` (draws on days ≤ by_day,
        the baseline included), ``evaluable`` (≥ 2 draws by ``by_day`` and a MALS/SIP
        baseline), ``reversed`` (bool), ``reversal_study_day`` (first day, NaN if none),
        ``followup_study_day`` (reversal day, else last draw day; for time-to-reversal).

    Notes
    -----
    The reversal proportion (clinical.md §1.6, the published row 46/59 vs 32/66 of §1.8.3)
    is ``reversed`` over the patients ``in_sampling_subset`` (59 + 66 = 125, §1.8.1), per
    arm and per baseline immune state; a subset patient without ≥ 2 draws by ``by_day``
    (``evaluable`` False) stays in the denominator as a non-reversal. Patients outside the
    subset (baseline sample only) are not part of the analysis. :func:`reversal_subset`
    selects the denominator; every count of this endpoint goes through it.
    """
    if isinstance(baseline_phenotype, pd.DataFrame):
        bp = baseline_phenotype.set_index("patient_id")["phenotype"]
    else:
        bp = baseline_phenotype
    bp = bp.astype(object).rename("baseline_phenotype")
    if "study_day" not in biomarkers.columns:
        raise DataValidationError(
            [Problem("biomarkers", None, "study_day", None, "a study_day column")]
        )
    known = biomarkers[biomarkers["patient_id"].isin(bp.index) & biomarkers["study_day"].notna()]
    n_all = known.groupby("patient_id").size()
    b = known[known["study_day"] <= by_day]
    ot = phenotype_over_time(b, thresholds=thresholds, time_col="study_day")
    ot = ot.merge(bp.rename("rand_phenotype"), left_on="patient_id", right_index=True)
    # an empty merge takes the right index (named patient_id, like the column): drop it
    ot = ot.reset_index(drop=True)
    rule = np.where(
        ot["rand_phenotype"] == Phenotype.MALS.value,
        ot["mals_reversal"],
        np.where(ot["rand_phenotype"] == Phenotype.SIP.value, ot["sip_reversal"], False),
    ).astype(bool)
    ot["_rev"] = rule
    g = ot.groupby("patient_id")
    n_samples = g.size()
    first_rev = ot[ot["_rev"]].groupby("patient_id")["study_day"].min()
    last_day = g["study_day"].max()
    out = pd.DataFrame(index=pd.Index(sorted(bp.index, key=str), name="patient_id"))
    out["baseline_phenotype"] = bp.reindex(out.index)
    immune_state = out["baseline_phenotype"].isin([Phenotype.MALS.value, Phenotype.SIP.value])
    out["in_sampling_subset"] = (n_all.reindex(out.index).fillna(0) >= 2) & immune_state
    out["n_samples"] = n_samples.reindex(out.index).fillna(0).astype(int)
    out["evaluable"] = (out["n_samples"] >= 2) & immune_state
    out["reversal_study_day"] = first_rev.reindex(out.index).astype(float)
    out["reversed"] = out["evaluable"] & out["reversal_study_day"].notna()
    out["reversal_study_day"] = out["reversal_study_day"].where(out["reversed"])
    out["followup_study_day"] = out["reversal_study_day"].fillna(
        last_day.reindex(out.index).astype(float)
    )
    return out.reset_index()[
        [
            "patient_id",
            "baseline_phenotype",
            "in_sampling_subset",
            "n_samples",
            "evaluable",
            "reversed",
            "reversal_study_day",
            "followup_study_day",
        ]
    ]


def reversal_subset(reversal: pd.DataFrame) -> pd.DataFrame:
    """The patients the immune-reversal proportion counts (clinical.md §1.6): the rows of an
    :func:`immune_reversal` table in the blood-sampling subset, those without ≥ 2 draws
    (``evaluable`` False) included as non-reversal. The one definition of the denominator:
    the cohort page, the publication check, the reports and the exports all count this."""
    return reversal[reversal["in_sampling_subset"]]


def shift_summary(
    over_time: pd.DataFrame, arms: pd.DataFrame, *, arm_col: str = "arm"
) -> pd.DataFrame:
    """Per arm and baseline phenotype: patients with a phenotype shift and with reversal.

    Parameters
    ----------
    over_time
        Output of :func:`phenotype_over_time`.
    arms
        ``patient_id``, ``arm_col`` (any labels).

    Returns
    -------
    DataFrame
        ``arm``, ``baseline_phenotype``, ``n_patients``, ``n_mals_to_sip`` (any later sample
        SIP after a MALS baseline), ``n_sip_to_mals``, ``n_any_shift``, ``n_reversal``.
    """
    ot = over_time.merge(arms[["patient_id", arm_col]], on="patient_id", how="inner")
    later = ot["sample_index"] > 0
    ot["_m2s"] = (
        later
        & (ot["baseline_phenotype"] == Phenotype.MALS.value)
        & (ot["phenotype"] == Phenotype.SIP.value)
    )
    ot["_s2m"] = (
        later
        & (ot["baseline_phenotype"] == Phenotype.SIP.value)
        & (ot["phenotype"] == Phenotype.MALS.value)
    )
    ot["_shift"] = ot["phenotype_shift"].notna()
    per = ot.groupby(["patient_id", arm_col, "baseline_phenotype"], as_index=False)[
        ["_m2s", "_s2m", "_shift", "reversal"]
    ].any()
    out = per.groupby([arm_col, "baseline_phenotype"], as_index=False).agg(
        n_patients=("patient_id", "nunique"),
        n_mals_to_sip=("_m2s", "sum"),
        n_sip_to_mals=("_s2m", "sum"),
        n_any_shift=("_shift", "sum"),
        n_reversal=("reversal", "sum"),
    )
    return out.rename(columns={arm_col: "arm"})
