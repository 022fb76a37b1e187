"""The generator's result: :class:`SyntheticTrial`, and the study day of death of its patients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from core.rules import SofaRules
from core.time import study_day
from core.vocab import RAW_TABLES

__all__ = ["SyntheticTrial", "death_study_day"]


@dataclass(frozen=True)
class SyntheticTrial:
    """A synthetic ImmunoSep-like trial: the raw tables of docs/architecture.md plus truth.

    Attributes
    ----------
    sites, patients, icu_stays, randomisation, observations, infusions, episodes, biomarkers,
    doses, adverse_events, disposition
        The raw long-format tables (column names and units of docs/architecture.md).
        Withdrawn patients (consent withdrawn with data removal) appear only in
        ``randomisation`` and ``disposition``. ``icu_stays``: one stay per analysed patient
        (admission before the first dose, discharge or death), a few readmissions
        (:mod:`core.synth.stays`).
    truth
        Per analysed patient the design: ``patient_id, arm, phenotype, baseline_sofa,
        designed_responder, latent_sofa_decrease, designed_responder_d15,
        latent_sofa_decrease_d15, death_study_day, last_icu_day, in_sampling_subset,
        designed_reversal``. For calibration tests only; contains the arm.
    latent_daily
        The daily SOFA components a correct engine recomputes from the raw data, one row per
        patient and charted study day before the day of death: ``patient_id, study_day,
        sofa_<organ>..., sofa_total`` (missing-component policy already applied).
    seed, scenario
        The generation arguments.
    """

    sites: pd.DataFrame
    patients: pd.DataFrame
    icu_stays: pd.DataFrame
    randomisation: pd.DataFrame
    observations: pd.DataFrame
    infusions: pd.DataFrame
    episodes: pd.DataFrame
    biomarkers: pd.DataFrame
    doses: pd.DataFrame
    adverse_events: pd.DataFrame
    disposition: pd.DataFrame
    truth: pd.DataFrame
    latent_daily: pd.DataFrame
    seed: int
    scenario: str

    #: names of the raw tables (docs/architecture.md), in a stable order
    TABLES: ClassVar[tuple[str, ...]] = RAW_TABLES

    def tables(self) -> dict[str, pd.DataFrame]:
        """The raw tables by name (a new dict; the frames themselves are shared)."""
        return {name: getattr(self, name) for name in self.TABLES}


def death_study_day(patients: pd.DataFrame, *, rules: SofaRules = SofaRules()) -> pd.Series:
    """Study day of death (:func:`core.time.study_day`), missing if alive.

    Under the default rule: floor((death_time - anchor_time) / 24 h) + 1.

    Parameters
    ----------
    patients
        ``anchor_time`` and ``death_time`` (NaT if alive), datetime64.
    rules
        ``rules.study_day`` picks the clock (:mod:`core.time`).

    Returns
    -------
    Series
        ``Int64`` (nullable), same index as ``patients``, named ``death_study_day``.
    """
    days = study_day(
        pd.to_datetime(patients["death_time"]), pd.to_datetime(patients["anchor_time"]), rules=rules
    )
    return days.rename("death_study_day")
