"""The emission grid: per-patient death time, weight and unit conventions, and the charted
patient-days (days 1..min(last ICU day, death day, n_days)) with that day's latent scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.synth._base import DAY_S, expand, hours
from core.synth.cohort import Cohort
from core.synth.flow import Flow
from core.synth.latent import Latent
from core.synth.published import UNITS_BY_COUNTRY

__all__ = ["Charting", "chart_grid"]


@dataclass(frozen=True, eq=False)
class Charting:
    """What every emitted table shares.

    Attributes
    ----------
    pid, country, anchor, death_s, weight, last
        Per analysed patient: id, site country, first dose (s), death time (s; int64 max if
        alive), weight (kg), last charted study day (<= ``n_days``).
    si_chem, kpa, fio2_pct, plt_1e9, mcg_min
        Per patient, the site's unit conventions (:data:`~core.synth.published.UNITS_BY_COUNTRY`).
    pat, day, start_s, cutoff_s, scores, observed
        Per charted patient-day: patient index, study day, day start (s), exclusive end of
        charting (day end or death, s), latent organ scores ``(k, 6)``, charting mask ``(k, 6)``.
    """

    pid: np.ndarray
    country: np.ndarray
    anchor: np.ndarray
    death_s: np.ndarray
    weight: np.ndarray
    last: np.ndarray
    si_chem: np.ndarray
    kpa: np.ndarray
    fio2_pct: np.ndarray
    plt_1e9: np.ndarray
    mcg_min: np.ndarray
    pat: np.ndarray
    day: np.ndarray
    start_s: np.ndarray
    cutoff_s: np.ndarray
    scores: np.ndarray
    observed: np.ndarray


def chart_grid(
    rng: np.random.Generator, flow: Flow, c: Cohort, latent: Latent, *, n_days: int
) -> Charting:
    """Draw death times and weights, then lay out the charted patient-days."""
    m = c.m
    pid = flow.patient_id[c.index]
    site = flow.site[c.index]
    country = flow.country[site]
    conv = np.array([UNITS_BY_COUNTRY[str(x)] for x in country], dtype=bool).reshape(m, 5)
    si_chem, kpa, fio2_pct, plt_1e9, mcg_min = conv.T
    anchor = c.anchor_s
    death_day = c.death_day
    death_s = np.where(
        np.isfinite(death_day),
        anchor
        + (np.where(np.isfinite(death_day), death_day, 1) - 1).astype(np.int64) * DAY_S
        + hours(rng.uniform(1.0, 23.0, m)),
        np.iinfo(np.int64).max,
    )
    weight = np.round(np.clip(rng.normal(78.0, 15.0, m), 45.0, 160.0), 1)

    # patient-days with charting: days 1..min(last_icu, death day, n_days)
    last = np.minimum(c.last_day, n_days)
    pd_pat, pd_pos = expand(last)
    pd_day = pd_pos + 1
    day0 = anchor[pd_pat] + (pd_day - 1) * DAY_S  # study-day start (s)
    cutoff = np.minimum(death_s[pd_pat], day0 + DAY_S)  # exclusive
    return Charting(
        pid=pid,
        country=country,
        anchor=anchor,
        death_s=death_s,
        weight=weight,
        last=last,
        si_chem=si_chem,
        kpa=kpa,
        fio2_pct=fio2_pct,
        plt_1e9=plt_1e9,
        mcg_min=mcg_min,
        pat=pd_pat,
        day=pd_day,
        start_s=day0,
        cutoff_s=cutoff,
        scores=latent.latent[pd_pat, :, pd_day - 1],  # latent score of the day, per organ
        observed=latent.observed[pd_pat, :, pd_day - 1],
    )
