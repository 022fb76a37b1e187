"""The design behind the raw tables: ``truth`` and ``latent_daily`` (calibration tests only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.synth._base import ORGANS, expand
from core.synth.biomarkers import Sampling
from core.synth.cohort import Cohort
from core.synth.latent import Latent
from core.vocab import Arm, Phenotype

__all__ = ["design_truth"]


def design_truth(
    c: Cohort, latent: Latent, sampling: Sampling, pid: np.ndarray, *, n_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``truth`` (the design per analysed patient) and ``latent_daily`` (the daily SOFA a
    correct engine recomputes, charted days before the day of death)."""
    m = c.m
    eff = latent.effective[:, :, :n_days]
    dd = c.death_day
    last = np.minimum(c.last_day, n_days)
    # charted days before the death day
    alive_last = np.where(np.isfinite(dd) & (dd <= last), dd - 1, last).astype(np.int64)
    alive_last = np.maximum(alive_last, 0)
    own, pos = expand(alive_last)
    day = pos + 1
    comp = eff[own, :, pos]
    cols = {"patient_id": pid[own], "study_day": day.astype(np.int64)}
    for i, organ in enumerate(ORGANS):
        cols[f"sofa_{organ.value}"] = comp[:, i].astype(np.int64)
    cols["sofa_total"] = comp.sum(axis=1).astype(np.int64)
    latent_daily = pd.DataFrame(cols)
    truth = pd.DataFrame(
        {
            "patient_id": pid,
            "arm": np.array([Arm.PRECISION.value, Arm.PLACEBO.value], dtype=object)[c.arm],
            "phenotype": np.where(c.mals, Phenotype.MALS.value, Phenotype.SIP.value).astype(object),
            "baseline_sofa": c.s1.astype(np.int64),
            "designed_responder": c.responder,
            "latent_sofa_decrease": latent.delta,
            "designed_responder_d15": c.responder15,
            "latent_sofa_decrease_d15": latent.delta15,
            "death_study_day": pd.array(np.where(np.isfinite(dd), dd, np.nan), dtype="Int64")
            if m
            else pd.array([], dtype="Int64"),
            "last_icu_day": np.minimum(c.last_icu, n_days),
            "in_sampling_subset": sampling.subset,
            "designed_reversal": sampling.reversal,
        }
    )
    return truth, latent_daily
