"""Raw ``biomarkers`` (ferritin, HLA-DR): baseline for all, follow-up for the sampling subset,
with the designed immune-state reversal (exact published counts per arm)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.concepts import BIOMARKER_COLUMNS
from core.synth._base import DAY_S, choose, hours, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort
from core.synth.published import scaled

__all__ = ["Sampling", "emit_biomarkers"]


@dataclass(frozen=True, eq=False)
class Sampling:
    """The ``biomarkers`` table and, per analysed patient, subset membership and the designed
    reversal."""

    table: pd.DataFrame
    subset: np.ndarray
    reversal: np.ndarray


def emit_biomarkers(rng: np.random.Generator, c: Cohort, ch: Charting, *, null: bool) -> Sampling:
    """Baseline ferritin / HLA-DR for all; days 3, 5, 7, 15, 28 for the sampling subset."""
    pid, anchor, death_s = ch.pid, ch.anchor, ch.death_s
    m = c.m
    mals = c.mals
    arm = c.arm
    near_f = rng.random(m) < 0.12
    near_h = rng.random(m) < 0.15
    f_mals = np.where(
        near_f, rng.uniform(4421, 5200, m), np.maximum(np.exp(rng.normal(9.1, 0.6, m)), 4421)
    )
    f_sip = np.where(
        near_f, rng.uniform(3900, 4420, m), np.clip(np.exp(rng.normal(6.8, 0.9, m)), 20, 4420)
    )
    f0 = np.floor(np.where(mals, f_mals, f_sip))
    h_any = np.exp(rng.normal(8.7, 0.7, m))
    h_sip = np.where(
        near_h, rng.uniform(4300, 4999, m), np.clip(np.exp(rng.normal(7.8, 0.5, m)), 300, 4999)
    )
    h0 = np.floor(np.where(mals, h_any, h_sip))
    t0 = c.randomised_s - hours(rng.uniform(3.0, 30.0, m))

    # sampling subset (alive for the day-3 draw) and designed reversal, exact counts per arm
    alive3 = c.death_day >= 4
    subset = np.zeros(m, bool)
    reverse = np.zeros(m, bool)
    for a in (0, 1):
        in_arm = arm == a
        n_a = int(in_arm.sum())
        sub = choose(rng, in_arm & alive3, scaled("subset", a, n_a, null=null), np.zeros(m))
        subset |= sub
        reverse |= choose(rng, sub, scaled("reversal", a, int(sub.sum()), null=null), np.zeros(m))
    sample_days = np.array([3, 5, 7, 15, 28])
    s_idx = np.flatnonzero(subset)
    t_s = (
        anchor[s_idx, None]
        + (sample_days[None, :] - 1) * DAY_S
        + hours(rng.uniform(6, 14, (s_idx.size, 5)))
    )
    avail = t_s < death_s[s_idx, None] - 3600
    # reversal day index: earlier on the active arm (published scenario)
    w_active = np.array([0.35, 0.3, 0.2, 0.1, 0.05])
    w_placebo = np.array([0.1, 0.2, 0.25, 0.25, 0.2])
    w = np.where(((arm[s_idx] == 0) & (not null))[:, None], w_active, w_placebo) * avail
    g = np.log(np.maximum(w, 1e-300)) + rng.gumbel(size=w.shape)
    g = np.where(avail, g, -np.inf)
    rev_j = g.argmax(axis=1)
    after = np.arange(5)[None, :] >= rev_j[:, None]
    rev = reverse[s_idx, None] & after
    ms = mals[s_idx, None]
    fb = f0[s_idx, None]
    hb = h0[s_idx, None]
    shape = (s_idx.size, 5)
    # MALS: reversal = ferritin <= 85 % of baseline; otherwise >= 88 %
    f_m = np.where(rev, fb * rng.uniform(0.3, 0.8, shape), fb * rng.uniform(0.88, 1.5, shape))
    h_m = hb * rng.uniform(0.7, 1.6, shape)
    # SIP: reversal = HLA-DR > 8000 with ferritin < 4420; otherwise HLA-DR <= 7500
    f_s = np.where(
        rev,
        np.minimum(fb * rng.uniform(0.5, 1.0, shape), 4000),
        np.minimum(fb * rng.uniform(0.7, 1.4, shape), 6000),
    )
    h_s = np.where(
        rev, rng.uniform(8500, 25000, shape), np.minimum(hb * rng.uniform(0.8, 1.7, shape), 7500)
    )
    f_t = np.floor(np.where(ms, f_m, f_s))
    h_t = np.floor(np.where(ms, h_m, h_s))
    sp, sj = np.nonzero(avail)
    pat = np.concatenate([np.arange(m), s_idx[sp]])
    time_s = np.concatenate([t0, t_s[sp, sj]])
    ferr = np.concatenate([f0, f_t[sp, sj]])
    hla = np.concatenate([h0, h_t[sp, sj]])
    # a few follow-up HLA-DR results missing (failed sample) on non-reversal draws
    miss = np.concatenate([np.zeros(m, bool), (~rev[sp, sj]) & (rng.random(sp.size) < 0.05)])
    hla = np.where(miss, np.nan, hla)
    order = np.lexsort((time_s, pat))
    table = pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": to_datetime(time_s[order]),
            BIOMARKER_COLUMNS["ferritin"]: ferr[order],
            BIOMARKER_COLUMNS["hla_dr"]: hla[order],
        }
    )
    return Sampling(table=table, subset=subset, reversal=reverse)
