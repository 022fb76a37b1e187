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

Modules: :mod:`~core.derive.primitives` (vectorised building blocks),
:mod:`~core.derive.vasopressors` (the duration rule), :mod:`~core.derive.grid`
(:func:`derive_daily_sofa`, one step per organ), :mod:`~core.derive.impute`
(:func:`fill_trajectory`), :mod:`~core.derive.provenance` (the "why this score" table) and
:mod:`~core.derive.rule_text` (texts generated from core.sofa's cut-offs and SofaRules).
"""

from __future__ import annotations

from core.derive.grid import SOFA_OBS_VARIABLES, DailySofa, derive_daily_sofa
from core.derive.impute import fill_trajectory
from core.derive.primitives import (
    GCS_NORMAL,
    assign_study_day,
    daily_urine,
    daily_worst_values,
    gcs_under_sedation,
    match_pao2_fio2,
)
from core.derive.rule_text import organ_rule_texts, vasopressor_duration_text
from core.derive.vasopressors import qualifying_infusions, vasopressor_counts
from core.vocab import RESPIRATORY_SUPPORT_KINDS as SUPPORT_KINDS
from core.vocab import SOFA_INPUT_COLUMNS

__all__ = [
    "GCS_NORMAL",
    "SOFA_INPUT_COLUMNS",
    "SOFA_OBS_VARIABLES",
    "SUPPORT_KINDS",
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
