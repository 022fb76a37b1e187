"""Stage 3, latent daily organ trajectories (days 1..28) with the designed responder statuses.

The SAP endpoint (days 2..9) and the day-15 SOFA response (days 2..15, clinical.md 1.6) are
recomputed on the scores the engine will see (day 1 missing -> 0, LOCF, death = 24);
trajectories that miss either designed status are redrawn, and the few that still miss it
take a deterministic course that meets both (:func:`_fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from core.rules import EndpointRules
from core.synth._base import N_DAYS_MAX
from core.synth.cohort import Cohort

__all__ = ["Latent", "draw_trajectories"]


#: the SAP endpoint the designed responders must meet (default rules: day 9, > 1.4, death = 24;
#: day 15 for the day-15 SOFA response)
_SAP: Final = EndpointRules()
_D9: Final = _SAP.last_day
_D15: Final = _SAP.day15_last_day


@dataclass(frozen=True, eq=False)
class Latent:
    """Daily organ scores per patient, ``(m, 6, 28)`` arrays in :data:`~core.synth._base.ORGANS`
    order.

    Attributes
    ----------
    latent
        The true daily scores (the raw values are drawn inside their bands).
    effective
        What the engine recomputes: unobserved day 1 -> 0, later gaps and days out of the ICU
        carried forward.
    delta, delta15
        SAP SOFA decrease day 1 -> mean(days 2..9), and -> mean(days 2..15), on ``effective``
        (death = 24), per patient.
    observed
        The charting mask actually used (the cohort's, forced on days 2..15 for the rare
        deterministic fallback).
    """

    latent: np.ndarray
    effective: np.ndarray
    delta: np.ndarray
    delta15: np.ndarray
    observed: np.ndarray


def _effective(lat: np.ndarray, observed: np.ndarray, last_icu: np.ndarray) -> np.ndarray:
    """Scores the engine sees: day-1 missing -> 0, later missing (or out of ICU) -> LOCF."""
    n_d = lat.shape[2]
    days = np.arange(1, n_d + 1)
    obs = observed[:, :, :n_d] & (days[None, None, :] <= last_icu[:, None, None])
    eff = np.where(obs, lat, 0)
    for t in range(1, n_d):
        eff[:, :, t] = np.where(obs[:, :, t], lat[:, :, t], eff[:, :, t - 1])
    return eff


def _delta(eff: np.ndarray, death_day: np.ndarray, last_day: int = _D9) -> np.ndarray:
    """SAP Δ = SOFA(day 1) − mean(days 2..last_day), 24 from the day of death (clinical.md
    1.5; last_day 15 for the day-15 response, 1.6)."""
    tot = eff[:, :, :last_day].sum(axis=1).astype(float)
    days = np.arange(1, last_day + 1)
    tot = np.where(days[None, :] >= death_day[:, None], float(_SAP.death_score), tot)
    tot[:, 0] = eff[:, :, 0].sum(axis=1)
    return tot[:, 0] - tot[:, 1:].mean(axis=1)


def _draw_latent(
    rng: np.random.Generator,
    base: np.ndarray,
    responder: np.ndarray,
    responder15: np.ndarray,
    death_day: np.ndarray,
    n_d: int,
) -> np.ndarray:
    """One draw of daily organ scores ``(k, 6, n_d)``: recovery curve, AR(1) noise, pre-death
    deterioration; day 1 is ``base``. The early recovery follows the day-9 status; the change
    after day 9 follows the day-15 status (late recovery, relapse, or more of the same)."""
    k = base.shape[0]
    t = np.arange(n_d, dtype=float)
    a = np.where(responder, rng.uniform(0.35, 0.9, k), rng.uniform(-0.25, 0.12, k))
    tau = rng.uniform(1.5, 4.0, k)
    frac = 1.0 - np.exp(-t[None, :] / tau[:, None])
    u = rng.uniform(0.0, 1.0, k)
    late = np.select(
        [responder15 & ~responder, responder & ~responder15, responder15],
        [0.9 + 0.5 * u, -0.3 - 0.6 * u, np.where(death_day > 28, 0.8 * u, 0.0)],
        default=np.where(death_day > 28, 0.35 * u, 0.0),
    )
    # the change after day 9 builds up over 8 days; a late responder's over 3 (by day 12)
    ramp_days = np.where(responder15 & ~responder, 3.0, 8.0)
    late_term = late[:, None] * np.clip((t[None, :] - 8.0) / ramp_days[:, None], 0.0, 1.0)
    x = base[:, :, None] * (1.0 - a[:, None, None] * frac[:, None, :] - late_term[:, None, :])
    eps = rng.normal(0.0, 0.28, (k, 6, n_d))
    e = np.zeros((k, 6, n_d))
    for i in range(1, n_d):
        e[:, :, i] = 0.6 * e[:, :, i - 1] + eps[:, :, i]
    x += e
    # deterioration over the last 4 days before death (respiration, cardiovascular, renal, CNS)
    ramp = np.clip(t[None, :] + 1.0 - (death_day[:, None] - 4.0), 0.0, None) * 0.7
    ramp = np.where(t[None, :] + 1.0 <= death_day[:, None], ramp, 0.0)
    x += ramp[:, None, :] * np.array([1.0, 0.3, 0.2, 1.0, 0.6, 0.6])[None, :, None]
    lat = np.clip(np.rint(x), 0, 4).astype(np.int64)
    lat[:, :, 0] = base
    return lat


def _meets(eff: np.ndarray, death_day: np.ndarray, r9: np.ndarray, r15: np.ndarray) -> np.ndarray:
    """Whether the recomputed day-9 and day-15 statuses are the designed ones."""
    thr = _SAP.threshold
    return ((_delta(eff, death_day, _D9) > thr) == r9) & (
        (_delta(eff, death_day, _D15) > thr) == r15
    )


def _lowered(scores: np.ndarray, points: int) -> np.ndarray:
    """Organ scores ``(k, 6)`` with ``points`` removed in total, one at a time from the highest
    organ (first organ on ties); fewer when the total is smaller."""
    out = scores.copy()
    rows = np.arange(out.shape[0])
    for _ in range(points):
        top = out.argmax(axis=1)
        out[rows, top] = np.maximum(out[rows, top] - 1, 0)
    return out


def _fallback(
    base_eff: np.ndarray,
    r9: np.ndarray,
    r15: np.ndarray,
    last_icu: np.ndarray,
    n_d: int,
) -> np.ndarray:
    """Deterministic days 2..n_d ``(k, 6, n_d - 1)`` meeting both statuses, from the day-1
    scores the engine sees (``base_eff``, total s1), with every day 2..15 charted.

    * day-9 and day-15 responder: s1 − 2 from day 2 on (Δ9 = Δ15 = 2);
    * day-9 responder only: s1 − 2 on days 2..t0−1, s1 from t0 = min(10, last ICU day) on
      (Δ9 ≥ 1.75, Δ15 ≤ 16 / 14 = 1.14; a death by day 15 lowers Δ15 further);
    * day-15 responder only (alive after day 15, s1 ≥ 4): s1 on days 2..t0−1, s1 − 4 from t0
      on (Δ9 ≤ 0.5, Δ15 ≥ 24 / 14 = 1.71);
    * neither: s1 throughout (Δ ≤ 0).

    Statuses that differ between day 9 and 15 are never discharged before day 9 (cohort.py),
    so t0 is 9 or 10. A responder with s1 < 2 (or a late one with s1 < 4) cannot improve
    enough and keeps a flat course.
    """
    k = base_eff.shape[0]
    t0 = np.minimum(_D9 + 1, last_icu)
    days = np.arange(2, n_d + 1)
    after = days[None, :] >= t0[:, None]  # (k, n_d - 1)
    flat = base_eff[:, :, None]
    minus2 = _lowered(base_eff, 2)[:, :, None]
    minus4 = _lowered(base_eff, 4)[:, :, None]
    shape = (k, 6, n_d - 1)
    out = np.broadcast_to(flat, shape).copy()
    both = (r9 & r15)[:, None, None]
    early = (r9 & ~r15)[:, None, None] & ~after[:, None, :]
    late = (~r9 & r15)[:, None, None] & after[:, None, :]
    out = np.where(both | early, np.broadcast_to(minus2, shape), out)
    return np.where(late, np.broadcast_to(minus4, shape), out)


def draw_trajectories(rng: np.random.Generator, c: Cohort, *, n_days: int) -> Latent:
    """Latent daily organ scores with the designed day-9 and day-15 responder statuses (redraw
    until both hold, then :func:`_fallback`)."""
    m = c.m
    n_d = N_DAYS_MAX
    observed = c.observed
    lat = np.zeros((m, 6, n_d), np.int64)
    eff = np.zeros_like(lat)
    last_icu = np.minimum(c.last_icu, n_days)
    need = np.ones(m, bool)
    for _ in range(60):
        idx = np.flatnonzero(need)
        if idx.size == 0:
            break
        lat[idx] = _draw_latent(
            rng, c.base[idx], c.responder[idx], c.responder15[idx], c.death_day[idx], n_d
        )
        eff[idx] = _effective(lat[idx], observed[idx], last_icu[idx])
        ok = _meets(eff[idx], c.death_day[idx], c.responder[idx], c.responder15[idx])
        need[idx[ok]] = False
    idx = np.flatnonzero(need)
    if idx.size:  # deterministic fallback (rare)
        observed = observed.copy()  # the cohort's mask stays as drawn
        observed[idx, :, 1:_D15] = True
        base_eff = np.where(observed[idx, :, 0], c.base[idx], 0)
        lat[idx, :, 1:] = _fallback(
            base_eff, c.responder[idx], c.responder15[idx], last_icu[idx], n_d
        )
        eff[idx] = _effective(lat[idx], observed[idx], last_icu[idx])
    return Latent(
        latent=lat,
        effective=eff,
        delta=_delta(eff, c.death_day, _D9),
        delta15=_delta(eff, c.death_day, _D15),
        observed=observed,
    )
