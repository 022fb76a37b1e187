"""Stage 3, latent daily organ trajectories (days 1..28) with the designed responder status.

The SAP endpoint is recomputed on the scores the engine will see (day 1 missing -> 0, LOCF,
death = 24); trajectories that miss their designed responder status are redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from core.rules import EndpointRules
from core.synth._base import N_DAYS_MAX
from core.synth.cohort import Cohort

__all__ = ["Latent", "draw_trajectories"]


#: the SAP endpoint the designed responders must meet (default rules: day 9, > 1.4, death = 24)
_SAP: Final = EndpointRules()


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
    delta
        SAP SOFA decrease day 1 -> mean(days 2..9) on ``effective`` (death = 24), per patient.
    observed
        The charting mask actually used (the cohort's, forced on days 2..9 for the rare
        deterministic fallback).
    """

    latent: np.ndarray
    effective: np.ndarray
    delta: np.ndarray
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


def _delta(eff: np.ndarray, death_day: np.ndarray) -> np.ndarray:
    """SAP Δ = SOFA(day 1) − mean(days 2..9), 24 from the day of death (clinical.md 1.5)."""
    tot = eff[:, :, : _SAP.last_day].sum(axis=1).astype(float)
    days = np.arange(1, _SAP.last_day + 1)
    tot = np.where(days[None, :] >= death_day[:, None], float(_SAP.death_score), tot)
    tot[:, 0] = eff[:, :, 0].sum(axis=1)
    return tot[:, 0] - tot[:, 1:].mean(axis=1)


def _draw_latent(
    rng: np.random.Generator,
    base: np.ndarray,
    responder: np.ndarray,
    death_day: np.ndarray,
    n_d: int,
) -> np.ndarray:
    """One draw of daily organ scores ``(k, 6, n_d)``: recovery curve, AR(1) noise, pre-death
    deterioration; day 1 is ``base``."""
    k = base.shape[0]
    t = np.arange(n_d, dtype=float)
    a = np.where(responder, rng.uniform(0.35, 0.9, k), rng.uniform(-0.25, 0.12, k))
    tau = rng.uniform(1.5, 4.0, k)
    frac = 1.0 - np.exp(-t[None, :] / tau[:, None])
    late = np.where(death_day > 28, rng.uniform(0.0, 0.8, k), 0.0)
    late_term = late[:, None] * np.clip((t[None, :] - 8.0) / 8.0, 0.0, 1.0)
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


def draw_trajectories(rng: np.random.Generator, c: Cohort, *, n_days: int) -> Latent:
    """Latent daily organ scores with the designed responder status (redraw until it holds)."""
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
        lat[idx] = _draw_latent(rng, c.base[idx], c.responder[idx], c.death_day[idx], n_d)
        eff[idx] = _effective(lat[idx], observed[idx], last_icu[idx])
        ok = (_delta(eff[idx], c.death_day[idx]) > _SAP.threshold) == c.responder[idx]
        need[idx[ok]] = False
    idx = np.flatnonzero(need)
    if idx.size:  # deterministic fallback (rare): flat course, or a 2-point drop from day 2
        drop = np.where(c.responder[idx, None, None], 2, 0)
        lat[idx, :, 1:] = np.maximum(c.base[idx, :, None] - drop, 0)
        observed = observed.copy()  # the cohort's mask stays as drawn
        observed[idx, :, 1 : _SAP.last_day] = True
        eff[idx] = _effective(lat[idx], observed[idx], last_icu[idx])
    return Latent(latent=lat, effective=eff, delta=_delta(eff, c.death_day), observed=observed)
