"""Raw trial-administration tables: ``patients``, ``randomisation``, ``doses`` (double dummy)
and ``disposition`` (screening flow, CONSORT)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.synth._base import DAY_S, HOUR_S, apportion, cat, hours, round_half_up, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort
from core.synth.flow import Flow
from core.synth.published import (
    EXCLUSION_PHENOTYPE,
    INFECTIONS,
    N_RANDOMISED_PUBLISHED,
    N_SCREENED_PUBLISHED,
    SCREENING_EXCLUSIONS,
)
from core.vocab import Arm, Phenotype

__all__ = ["emit_disposition", "emit_doses", "emit_patients"]


def emit_patients(
    rng: np.random.Generator, flow: Flow, c: Cohort, ch: Charting
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``patients`` table (analysed patients, ``synthetic = True``) and ``randomisation``
    (every randomised person, withdrawn included, with the arm)."""
    weight, death_s = ch.weight, ch.death_s
    m = c.m
    keep = c.index
    sev = c.sev
    apache = np.clip(np.rint(20.5 + 4.5 * sev + rng.normal(0, 4.5, m)), 5, 50).astype(np.int64)
    charlson = np.clip(np.rint(rng.normal(4.6, 2.2, m) + 0.04 * (c.age - 70)), 0, 14)
    labels = np.array([x[0] for x in INFECTIONS], dtype=object)
    infection = labels[cat(rng.random(m), tuple(x[1] for x in INFECTIONS))]
    alive = death_s == np.iinfo(np.int64).max
    death_col = np.where(
        alive, np.datetime64("NaT", "ns"), to_datetime(np.where(alive, 0, death_s))
    )
    patients = pd.DataFrame(
        {
            "patient_id": flow.patient_id[keep],
            "site_id": flow.site_ids[flow.site[keep]],
            "anchor_time": to_datetime(c.anchor_s),
            "weight_kg": weight,
            "death_time": death_col,
            "age_years": c.age,
            "sex": np.where(c.female, "F", "M").astype(object),
            "apache_ii": apache,
            "charlson": charlson.astype(np.int64),
            "infection_type": infection,
            "mechanical_ventilation": c.mv,
            "randomised_at": to_datetime(c.randomised_s),
            "synthetic": np.ones(m, bool),
        }
    )
    arm_names = np.array([Arm.PRECISION.value, Arm.PLACEBO.value], dtype=object)
    order = np.argsort(flow.patient_id.astype(str), kind="stable")
    randomisation = pd.DataFrame(
        {
            "patient_id": flow.patient_id[order],
            "arm": arm_names[flow.arm[order]],
            "randomised_at": to_datetime(flow.randomised_s[order]),
        }
    )
    return patients, randomisation


def emit_doses(rng: np.random.Generator, ch: Charting) -> pd.DataFrame:
    """Double dummy: IV every 8 h and SC every 48 h for up to 15 days (blinded label)."""
    pid, anchor, death_s = ch.pid, ch.anchor, ch.death_s
    m = pid.size
    stop = np.minimum(anchor + 15 * DAY_S, death_s)
    early = rng.random(m) < 0.1
    stop = np.where(early, np.minimum(stop, anchor + rng.integers(3, 15, m) * DAY_S), stop)
    iv_k = np.arange(45)
    sc_k = np.arange(8)
    iv = (
        anchor[:, None]
        + iv_k[None, :] * 8 * HOUR_S
        + np.where(iv_k[None, :] == 0, 0, hours(rng.uniform(-0.3, 0.3, (m, 45))))
    )
    sc = anchor[:, None] + sc_k[None, :] * 48 * HOUR_S + hours(rng.uniform(0.05, 0.5, (m, 8)))
    ip, ij = np.nonzero(iv < stop[:, None])
    sp_, sj = np.nonzero(sc < stop[:, None])
    pat = np.concatenate([ip, sp_])
    t = np.concatenate([iv[ip, ij], sc[sp_, sj]])
    route = np.concatenate([np.zeros(ip.size, np.int64), np.ones(sp_.size, np.int64)])
    order = np.lexsort((route, t, pat))
    return pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": to_datetime(t[order]),
            "route": np.array(["IV", "SC"], dtype=object)[route[order]],
            "label": np.full(order.size, "study drug", dtype=object),
        },
        copy=False,
    )


def emit_disposition(
    rng: np.random.Generator, flow: Flow, biomarkers: pd.DataFrame
) -> pd.DataFrame:
    """The ``disposition`` table: every screened person, excluded (synthetic reason, counts as
    published and scaled) or randomised (screened at the baseline biomarker sample)."""
    n = flow.n
    n_screened = round_half_up(n * N_SCREENED_PUBLISHED / N_RANDOMISED_PUBLISHED)
    n_excl = n_screened - n
    counts = apportion(n_excl, np.array([x[1] for x in SCREENING_EXCLUSIONS]))
    reason_idx = np.repeat(np.arange(len(counts)), counts)
    labels = np.array([x[0] for x in SCREENING_EXCLUSIONS], dtype=object)
    fixed = np.array(EXCLUSION_PHENOTYPE, dtype=object)[reason_idx]
    drawn = np.where(rng.random(n_excl) < 0.2, Phenotype.MALS.value, Phenotype.SIP.value)
    ex_pheno = np.where(pd.isna(fixed), drawn, fixed).astype(object)
    ex_site = rng.choice(flow.site_ids.size, n_excl, p=flow.site_weights / flow.site_weights.sum())
    ex_time = flow.start_s + hours(rng.random(n_excl) * flow.enrolment_days * 24)
    # randomised: screened a few hours before randomisation
    r_time = flow.randomised_s - hours(rng.uniform(3.0, 30.0, n))
    r_pheno = np.where(flow.is_mals, Phenotype.MALS.value, Phenotype.SIP.value).astype(object)
    # analysed patients: the screening time of their baseline sample
    first = biomarkers.drop_duplicates("patient_id")
    t_map = pd.Series(
        first["time"].to_numpy().astype("datetime64[s]").astype(np.int64), index=first["patient_id"]
    )
    known = pd.Series(flow.patient_id).map(t_map)
    r_time = np.where(known.notna(), known.fillna(0).to_numpy(np.int64), r_time)
    time_s = np.concatenate([r_time, ex_time])
    pid = np.concatenate([flow.patient_id, np.full(n_excl, None, object)])
    site = np.concatenate([flow.site_ids[flow.site], flow.site_ids[ex_site]])
    reason = np.concatenate([np.full(n, None, object), labels[reason_idx]])
    pheno = np.concatenate([r_pheno, ex_pheno])
    wd = np.concatenate([flow.withdrawn, np.zeros(n_excl, bool)])
    tie = np.arange(time_s.size)
    order = np.lexsort((tie, time_s))
    width = max(5, len(str(n_screened)))
    return pd.DataFrame(
        {
            "screening_id": np.array(
                [f"SYN-SCR-{i + 1:0{width}d}" for i in range(order.size)], dtype=object
            ),
            "site_id": site[order],
            "patient_id": pid[order],
            "excluded_reason": reason[order],
            "phenotype_at_screening": pheno[order],
            "withdrawn_with_data_removal": wd[order],
        }
    )
