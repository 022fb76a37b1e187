"""One patient's data for the patient page and the API: daily SOFA, provenance, raw support
rows, biomarkers (post-baseline ones only where blinding allows) and the primary endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.blinding import may_see_post_baseline_biomarkers
from components.data.cohort import cohort_patients
from components.data.keys import Context
from components.server.cache import cache
from components.server.context import engine
from core.endpoints import sofa_response
from core.exceptions import UnknownPatientError
from core.phenotype import classify_frame
from core.repository import load_daily_sofa, load_patient_raw, load_patient_site, load_provenance
from core.time import study_day


@dataclass(frozen=True)
class PatientView:
    """Everything the patient page shows, computed for one access (never the arm)."""

    patient: dict[str, Any]
    daily: pd.DataFrame
    provenance: pd.DataFrame
    infusions: pd.DataFrame
    episodes: pd.DataFrame
    doses: pd.DataFrame
    biomarkers: pd.DataFrame
    biomarkers_hidden_after_baseline: bool
    endpoint: dict[str, Any]


@cache.memoize()
def _patient_view(ctx: Context, patient_id: str) -> PatientView:
    patients = cohort_patients(ctx)
    match = patients[patients["patient_id"] == patient_id]
    if match.empty:
        raise UnknownPatientError(patient_id)
    patient = match.iloc[0].to_dict()
    rules_key = ctx.sofa_rules.key()
    raw = load_patient_raw(engine(), patient_id)
    daily = load_daily_sofa(engine(), rules_key=rules_key, patient_ids=[patient_id])
    prov = load_provenance(engine(), patient_id, rules_key=rules_key)
    anchor = pd.Timestamp(patient["anchor_time"])
    bio = raw.biomarkers.copy()
    bio["study_day"] = study_day(bio["time"], anchor, rules=ctx.sofa_rules)
    bio = pd.concat([bio, classify_frame(bio, thresholds=ctx.thresholds)], axis=1)
    hidden = False
    if not may_see_post_baseline_biomarkers(ctx.visibility) and len(bio) > 1:
        bio = bio.iloc[:1]
        hidden = True
    endpoint: dict[str, Any] = {"evaluable": False}
    if len(daily):
        death = patient.get("death_study_day")
        rules = ctx.endpoint_rules
        resp = sofa_response(
            daily,
            pd.DataFrame(
                {
                    "patient_id": [patient_id],
                    "death_study_day": [np.nan if pd.isna(death) else float(death)],
                }
            ),
            last_day=rules.last_day,
            threshold=rules.threshold,
            death_score=rules.death_score,
        )
        endpoint = resp.iloc[0].to_dict()
        endpoint["evaluable"] = True
    return PatientView(
        patient=patient,
        daily=daily,
        provenance=prov,
        infusions=raw.infusions,
        episodes=raw.episodes,
        doses=raw.doses,
        biomarkers=bio,
        biomarkers_hidden_after_baseline=hidden,
        endpoint=endpoint,
    )


def check_patient_access(ctx: Context, patient_id: str) -> None:
    """Raise UnknownPatientError unless the patient exists and is in the context's sites
    (one indexed row read; the same error for both, so ids elsewhere cannot be probed)."""
    site = load_patient_site(engine(), patient_id)
    if site is None or (ctx.sites is not None and site not in ctx.sites):
        raise UnknownPatientError(patient_id)


def patient_view(ctx: Context, patient_id: str) -> PatientView:
    """The patient page's data for this access.

    Raises UnknownPatientError for an unknown id AND for a patient outside the context's
    sites (the same message: a restricted user cannot probe which ids exist elsewhere).
    """
    check_patient_access(ctx, patient_id)
    return _patient_view(ctx, patient_id)
