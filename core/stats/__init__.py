"""Arm statistics that reproduce the published ImmunoSep tables.

Methods follow clinical.md §1.7 and §6 (SRC-AUDIT; reproduction graded [D]):

* two-sided Fisher exact P (scipy ``fisher_exact``);
* odds ratio with a Woolf (logit) 95 % CI;
* risk difference (treated − control) with a Newcombe hybrid score (Wilson, no continuity
  correction) 95 % CI — statsmodels ``confint_proportions_2indep(method="newcomb")``;
* Breslow–Day homogeneity with Tarone's adjustment, treatment × subgroup interaction by a
  logistic-regression likelihood-ratio test, Kaplan–Meier / log-rank / Cox (lifelines);
* mean SOFA trajectories, adverse events by SOC × PT, CONSORT counts and Table 1 with
  standardized mean differences (no baseline p-values; docs/features.md §5.2, CONSORT).

Every function returns numbers (tidy DataFrames or frozen dataclasses); formatting belongs
to the UI. Group labels are free: the arm values are normally :class:`core.vocab.Arm`
(``'precision'`` / ``'placebo'``), but a coded DSMB view may pass ``'Group A'`` /
``'Group B'`` through the ``treated`` / ``control`` parameters (docs/blinding.md §6.2).

Modules: :mod:`~core.stats.proportions` (two proportions, arm summaries),
:mod:`~core.stats.subgroups` (Breslow–Day, interaction, forest rows),
:mod:`~core.stats.survival` (Kaplan–Meier, log-rank, Cox), :mod:`~core.stats.tables`
(SOFA trajectories, adverse events, CONSORT), :mod:`~core.stats.baseline` (Table 1, SMDs) and
:mod:`~core.stats.backends` (:func:`import_backends`). Import from ``core.stats``.
"""

from __future__ import annotations

from core.stats.backends import import_backends
from core.stats.baseline import categorical_smd, standardized_mean_difference, table_one
from core.stats.proportions import ProportionComparison, arm_summary, compare_proportions
from core.stats.subgroups import (
    BreslowDayResult,
    InteractionResult,
    breslow_day,
    forest_rows,
    interaction_test,
)
from core.stats.survival import (
    CoxResult,
    KaplanMeierResult,
    LogRankResult,
    cox_hr,
    kaplan_meier,
    logrank,
)
from core.stats.tables import (
    AE_TABLE_COLUMNS,
    adverse_event_table,
    consort_counts,
    sofa_trajectories,
)

__all__ = [
    "AE_TABLE_COLUMNS",
    "BreslowDayResult",
    "CoxResult",
    "InteractionResult",
    "KaplanMeierResult",
    "LogRankResult",
    "ProportionComparison",
    "adverse_event_table",
    "arm_summary",
    "breslow_day",
    "categorical_smd",
    "compare_proportions",
    "consort_counts",
    "cox_hr",
    "forest_rows",
    "import_backends",
    "interaction_test",
    "kaplan_meier",
    "logrank",
    "sofa_trajectories",
    "standardized_mean_difference",
    "table_one",
]
