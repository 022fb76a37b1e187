"""Stage 2, the analysed cohort: baseline, day-1 SOFA, deaths, responders, ICU discharge."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.special import ndtr

from core.synth._base import N_DAYS_MAX, RESP, cat, choose, hours
from core.synth.flow import Flow
from core.synth.published import scaled

__all__ = ["Cohort", "draw_cohort"]

#: day-1 score distributions 0..4 (respiration: with / without ventilation, see below)
_BASE_PROBS: Final = (
    None,
    (0.45, 0.25, 0.17, 0.09, 0.04),
    (0.55, 0.22, 0.15, 0.06, 0.02),
    (0.17, 0.2, 0.14, 0.3, 0.19),
    (0.5, 0.25, 0.13, 0.08, 0.04),
    (0.37, 0.25, 0.18, 0.12, 0.08),
)
_RESP_PROBS_MV: Final = (0.0, 0.0, 0.22, 0.55, 0.23)
_RESP_PROBS_NO_MV: Final = (0.15, 0.40, 0.45, 0.0, 0.0)
#: probability that an organ's input is not charted on a day (days >= 2; day 1 smaller)
_MISSING_P: Final = (0.06, 0.05, 0.12, 0.0, 0.0, 0.0)
_MISSING_P_DAY1: Final = (0.0, 0.0, 0.03, 0.0, 0.0, 0.0)
#: smallest day-1 SOFA of a day-15 responder who is not a day-9 responder (a fall of 4 points
#: from day 10 on gives Δ15 = 6 · 4 / 14 = 1.71 > 1.4 with Δ9 = 0, latent.py's fallback)
_LATE_RESPONDER_MIN_SOFA: Final = 4


@dataclass(frozen=True, eq=False)
class Cohort:
    """The analysed patients (withdrawn left out) in ``patient_id`` order; one value each.

    Attributes
    ----------
    index
        Position of each patient in the :class:`~core.synth.flow.Flow` arrays.
    m
        Analysed patients.
    arm, mals, anchor_s, randomised_s, age, female, mv, sev
        Arm (0 precision, 1 placebo), MALS (else SIP), first dose and randomisation times (s),
        age, female, mechanically ventilated at baseline, latent severity.
    base, observed
        Day-1 organ scores ``(m, 6)`` and the charting mask ``(m, 6, 28)`` before any redraw.
    s1
        Day-1 SOFA as the engine sees it (unobserved day-1 component = 0).
    death_day, responder, responder15, last_icu, last_day
        Study day of death (inf if alive by day 90), designed responder of the primary
        endpoint (day 9) and of the day-15 SOFA response (clinical.md 1.6), last ICU day, last
        day with charting (the death day is charted in part).
    """

    index: np.ndarray
    m: int
    arm: np.ndarray
    mals: np.ndarray
    anchor_s: np.ndarray
    randomised_s: np.ndarray
    age: np.ndarray
    female: np.ndarray
    mv: np.ndarray
    sev: np.ndarray
    base: np.ndarray
    observed: np.ndarray
    s1: np.ndarray
    death_day: np.ndarray
    responder: np.ndarray
    responder15: np.ndarray
    last_icu: np.ndarray
    last_day: np.ndarray


def draw_cohort(rng: np.random.Generator, flow: Flow, *, null: bool) -> Cohort:
    """Baseline, day-1 organ scores, charting gaps, deaths, responders and ICU discharge.

    Deaths, responders (day 9 and day 15) and early discharges hit their scaled published
    counts exactly per arm (and stratum); ``null`` uses the pooled rates in both arms.
    """
    keep = np.flatnonzero(~flow.withdrawn)
    # analysed patients in patient_id order (deterministic output order)
    keep = keep[np.argsort(flow.patient_id[keep].astype(str), kind="stable")]
    m = keep.size
    arm = flow.arm[keep]
    mals = flow.is_mals[keep]
    rand_s = flow.randomised_s[keep]
    anchor_s = rand_s + hours(rng.uniform(1.0, 6.0, m))

    sev = rng.standard_normal(m) + 0.3 * mals
    age = np.clip(np.rint(rng.normal(70.0, 11.5, m) + 1.5 * sev), 19, 97).astype(np.int64)
    # mechanical ventilation: exact counts per arm, more likely when severe
    mv = np.zeros(m, bool)
    female = np.zeros(m, bool)
    for a in (0, 1):
        in_arm = arm == a
        n_a = int(in_arm.sum())
        mv |= choose(rng, in_arm, scaled("mv", a, n_a, null=null), 0.6 * sev)
        female |= choose(rng, in_arm, scaled("female", a, n_a, null=null), np.zeros(m))

    # day-1 organ scores: Gaussian copula on the severity
    z = 0.55 * sev[:, None] + math.sqrt(1 - 0.55**2) * rng.standard_normal((m, 6))
    u = ndtr(z)
    base = np.zeros((m, 6), np.int64)
    base[:, RESP] = np.where(mv, cat(u[:, 0], _RESP_PROBS_MV), cat(u[:, 0], _RESP_PROBS_NO_MV))
    for o in range(1, 6):
        base[:, o] = cat(u[:, o], _BASE_PROBS[o])

    # missingness (resp / coag / liver) per day, fixed before the trajectories
    n_d = N_DAYS_MAX
    p_miss = np.asarray(_MISSING_P)[None, :, None] * np.ones((m, 6, n_d))
    p_miss[:, :, 0] = np.asarray(_MISSING_P_DAY1)[None, :]
    observed = rng.random((m, 6, n_d)) >= p_miss

    base_eff = np.where(observed[:, :, 0], base, 0)
    s1 = base_eff.sum(axis=1)

    # deaths: exact counts per arm, risk rising with baseline SOFA, MALS and age
    logw = 0.3 * s1 + 0.7 * mals + 0.02 * (age - 70)
    death_day = np.full(m, np.inf)
    for a in (0, 1):
        in_arm = arm == a
        n_a = int(in_arm.sum())
        d90 = choose(rng, in_arm, scaled("dead90", a, n_a, null=null), logw)
        d28 = choose(rng, d90, scaled("dead28", a, n_a, null=null), 0.2 * s1)
        d9 = choose(rng, d28, scaled("dead9", a, n_a, null=null), 0.2 * s1)
        death_day[d9] = rng.integers(2, 10, int(d9.sum()))
        late = d28 & ~d9
        death_day[late] = rng.integers(10, 29, int(late.sum()))
        later = d90 & ~d28
        death_day[later] = rng.integers(29, 91, int(later.sum()))

    # responders: exact counts per arm and stratum among day-9 survivors with room to improve
    responder = np.zeros(m, bool)
    alive9 = death_day > 9
    rlogw = 0.15 * s1 - 1.0 * (death_day <= 28) - 0.4 * (death_day <= 90)
    for a in (0, 1):
        for is_m, key in ((True, "resp_mals"), (False, "resp_sip")):
            grp = (arm == a) & (mals == is_m)
            k = scaled(key, a, int(grp.sum()), null=null)
            responder |= choose(rng, grp & alive9 & (s1 >= 3), k, rlogw)

    # day-15 responders (days 2..15, clinical.md 1.6): exact counts per arm and stratum among
    # day-15 survivors (a death by day 15 scores 24 from that day on: a non-responder by
    # design); day-9 responders come first (most keep their response), the others are late
    # responders with room to fall 4 points (latent.py can always draw their course)
    responder15 = np.zeros(m, bool)
    alive15 = death_day > 15
    for a in (0, 1):
        for is_m, key in ((True, "resp15_mals"), (False, "resp15_sip")):
            grp = (arm == a) & (mals == is_m)
            k = scaled(key, a, int(grp.sum()), null=null)
            pool = grp & alive15 & (responder | (s1 >= _LATE_RESPONDER_MIN_SOFA))
            responder15 |= choose(rng, pool, k, rlogw + 5.0 * responder)

    # ICU discharge (no charting afterwards): exact day-9 LOCF counts, then more after day 9;
    # never before day 9 when the day-15 status differs from day 9's (a late response or a
    # relapse needs charting after day 9)
    last_icu = np.full(m, N_DAYS_MAX, np.int64)
    for a in (0, 1):
        in_arm = arm == a
        k = scaled("locf9", a, int(in_arm.sum()), null=null)
        steady = responder == responder15
        early = choose(rng, in_arm & alive9 & steady, k, 1.0 * responder - 0.1 * s1)
        last_icu[early] = rng.integers(4, 9, int(early.sum()))
    late_pool = (death_day > 28) & (last_icu == N_DAYS_MAX)
    late_dc = late_pool & (rng.random(m) < 0.55)
    last_icu[late_dc] = rng.integers(10, 28, int(late_dc.sum()))
    dd = np.where(np.isfinite(death_day), death_day, 10_000).astype(np.int64)
    last_day = np.minimum(last_icu, dd)  # last study day with charting (death day: partial)

    return Cohort(
        index=keep,
        m=m,
        arm=arm,
        mals=mals,
        anchor_s=anchor_s,
        randomised_s=rand_s,
        age=age,
        female=female,
        mv=mv,
        sev=sev,
        base=base,
        observed=observed,
        s1=s1,
        death_day=death_day,
        responder=responder,
        responder15=responder15,
        last_icu=last_icu,
        last_day=last_day,
    )
