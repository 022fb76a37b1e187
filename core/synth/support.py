"""Raw organ-support tables: vasopressor ``infusions`` and ``episodes`` (ventilation, oxygen,
RRT, sedation), consistent with the latent cardiovascular, respiratory and renal scores."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from core.concepts import SCORED_DRUGS, concept
from core.rules import SofaRules
from core.sofa import drug_tiers
from core.synth._base import CARD, DAY_S, RENAL, RESP, hours, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort
from core.synth.latent import Latent
from core.synth.observations import Sedation
from core.vocab import EPISODE_KINDS, EpisodeKind

__all__ = ["emit_episodes", "emit_infusions"]

# drug codes: positions in core.concepts.SCORED_DRUGS (the ``drug`` column's values)
_NE, _EPI, _DOPA, _DOBU = (
    SCORED_DRUGS.index(d) for d in ("norepinephrine", "epinephrine", "dopamine", "dobutamine")
)
#: per drug code: the canonical rate unit and the per-body-weight unit (core.concepts)
_RATE_UNIT: Final = np.array([concept(d).unit for d in SCORED_DRUGS], dtype=object)
_PER_WEIGHT_UNIT: Final = np.array(
    [concept(d).per_weight_units[0] for d in SCORED_DRUGS], dtype=object
)
#: runs shorter than the default vasopressor duration rule (min) never count
_MIN_RUN_MINUTES: Final = SofaRules().vasopressor_min_minutes
#: episode kinds in sort order (the table's tie-break)
_KINDS_SORTED: Final = np.array(sorted(EPISODE_KINDS), dtype=object)


def _tier(drug: str, points: int) -> tuple[float, float]:
    """Rates ``(above, up_to]`` (mcg/kg/min) at which ``drug`` alone earns ``points``
    (:func:`core.sofa.drug_tiers`); ``up_to`` is infinite for the top tier."""
    tiers = drug_tiers(drug)
    for i, (above, pts) in enumerate(tiers):
        if pts == points:
            return above, tiers[i + 1][0] if i + 1 < len(tiers) else math.inf
    raise ValueError(f"{drug} never earns {points} points")


def _at(cut: float, offset: float) -> float:
    """``cut + offset`` rounded to 6 decimals (0.1 + 0.03 is the double 0.13)."""
    return round(cut + offset, 6)


# rate draws per cardiovascular score, inside the tiers of core.sofa (with margins);
# epinephrine shares the norepinephrine tiers (tests/test_concept_usage.py)
_CATECHOL_4: Final = (_at(_tier("norepinephrine", 4)[0], 0.03), 0.6)
_CATECHOL_3: Final = (0.02, _at(_tier("norepinephrine", 3)[1], -0.01))
_CATECHOL_3_LOW: Final = (0.03, _CATECHOL_3[1])
_DOPA_4: Final = (_at(_tier("dopamine", 4)[0], 1.0), 19.5)
_DOPA_3: Final = (_at(_tier("dopamine", 3)[0], 0.5), _at(_tier("dopamine", 3)[1], -0.5))
_DOPA_2: Final = (1.0, _at(_tier("dopamine", 2)[1], -0.5))
_DOBU_2: Final = (_at(_tier("dobutamine", 2)[0], 2.5), 10.0)


def emit_infusions(rng: np.random.Generator, ch: Charting) -> pd.DataFrame:
    """Vasopressor / inotrope infusions per day, each inside its study day (>= 60 min runs).

    Drug and rate follow the day's cardiovascular score; sites with ``mcg_min`` chart rates in
    mcg/min (rate x weight), the others in mcg/kg/min.
    """
    pid, pd_pat, day0, cutoff = ch.pid, ch.pat, ch.start_s, ch.cutoff_s
    card = ch.scores[:, CARD]
    weight, mcg_min = ch.weight, ch.mcg_min
    npd = pd_pat.size
    u = rng.random(npd)
    # drug by score: 4 NE / epi / dopa>15; 3 NE / epi / dopa 5-15; 2 dobutamine / dopa<=5
    drug = np.where(
        card == 4,
        np.where(u < 0.7, _NE, np.where(u < 0.85, _EPI, _DOPA)),
        np.where(
            card == 3,
            np.where(u < 0.75, _NE, np.where(u < 0.85, _EPI, _DOPA)),
            np.where(u < 0.6, _DOBU, _DOPA),
        ),
    )
    catechol = (drug == _NE) | (drug == _EPI)
    rate = np.select(
        [
            (card == 4) & catechol,
            (card == 4) & (drug == _DOPA),
            (card == 3) & catechol,
            (card == 3) & (drug == _DOPA),
            (card == 2) & (drug == _DOBU),
            (card == 2) & (drug == _DOPA),
        ],
        [
            rng.uniform(*_CATECHOL_4, npd),
            rng.uniform(*_DOPA_4, npd),
            rng.uniform(*_CATECHOL_3, npd),
            rng.uniform(*_DOPA_3, npd),
            rng.uniform(*_DOBU_2, npd),
            rng.uniform(*_DOPA_2, npd),
        ],
        default=np.nan,
    )
    on = card >= 2
    t0 = rng.uniform(0.5, 4.0, npd)
    dur = np.minimum(rng.uniform(3.0, 19.5, npd), 23.5 - t0)
    split = on & (rng.random(npd) < 0.35)
    cut = t0 + 1.25 + rng.random(npd) * np.maximum(dur - 2.5, 0.0)
    low = np.where(
        catechol, np.where(card == 4, rng.uniform(*_CATECHOL_3_LOW, npd), rate * 0.6), rate * 0.6
    )
    first_low = rng.random(npd) < 0.5
    seg_pd = [np.flatnonzero(on & ~split), np.flatnonzero(split), np.flatnonzero(split)]
    seg_start = [t0[seg_pd[0]], t0[seg_pd[1]], cut[seg_pd[2]]]
    seg_stop = [t0[seg_pd[0]] + dur[seg_pd[0]], cut[seg_pd[1]], (t0 + dur)[seg_pd[2]]]
    fl = first_low[seg_pd[1]]
    seg_rate = [
        rate[seg_pd[0]],
        np.where(fl, low[seg_pd[1]], rate[seg_pd[1]]),
        np.where(fl, rate[seg_pd[2]], low[seg_pd[2]]),
    ]
    seg_drug = [drug[s] for s in seg_pd]
    # short runs (< 60 min, the default rule) that must not count: norepinephrine, days scored 0-1
    short = np.flatnonzero((card <= 1) & (rng.random(npd) < 0.08))
    s_start = rng.uniform(1.0, 22.0, short.size)
    seg_pd.append(short)
    seg_start.append(s_start)
    seg_stop.append(s_start + rng.uniform(15.0, _MIN_RUN_MINUTES - 15.0, short.size) / 60.0)
    seg_rate.append(rng.uniform(0.12, 0.35, short.size))
    seg_drug.append(np.full(short.size, _NE, np.int64))
    spd = np.concatenate(seg_pd)
    st = day0[spd] + hours(np.concatenate(seg_start))
    sp = np.minimum(day0[spd] + hours(np.concatenate(seg_stop)), cutoff[spd] - 60)
    r = np.concatenate(seg_rate)
    dg = np.concatenate(seg_drug)
    ok = sp - st >= 60  # at least one minute (s)
    spd, st, sp, r, dg = spd[ok], st[ok], sp[ok], r[ok], dg[ok]
    p = pd_pat[spd]
    per_min = mcg_min[p]
    rate_val = np.where(per_min, np.round(r * weight[p], 1), np.round(r, 3))
    unit = np.where(per_min, _PER_WEIGHT_UNIT[dg], _RATE_UNIT[dg])
    order = np.lexsort((dg, st, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "drug": np.array(SCORED_DRUGS, dtype=object)[dg[order]],
            "start": to_datetime(st[order]),
            "stop": to_datetime(sp[order]),
            "rate": rate_val[order],
            "unit": unit[order],
        },
        copy=False,
    )


def emit_episodes(
    rng: np.random.Generator,
    c: Cohort,
    latent: Latent,
    ch: Charting,
    sedation: Sedation,
    *,
    n_days: int,
) -> pd.DataFrame:
    """Ventilation / oxygen / RRT / sedation episodes consistent with the latent scores."""
    pid, anchor, death_s, last = ch.pid, ch.anchor, ch.death_s, ch.last
    sp_pat, sed_start, sed_stop = sedation.pat, sedation.start_s, sedation.stop_s
    m = c.m
    lat = latent.latent[:, :, :n_days]
    obs = latent.observed[:, :, :n_days]
    days = np.arange(1, n_days + 1)
    charted = days[None, :] <= last[:, None]
    hi = (lat[:, RESP, :] >= 3) & obs[:, RESP, :] & charted
    any_hi = hi.any(axis=1)
    first_hi = np.where(any_hi, hi.argmax(axis=1) + 1, 0)
    last_hi = np.where(any_hi, n_days - hi[:, ::-1].argmax(axis=1), 0)
    mv = c.mv
    has_any = last >= 1
    extub = rng.integers(1, 6, m)
    v_on = has_any & (mv | any_hi)
    v_start = np.where(mv, 1, first_hi)
    v_end = np.minimum(np.maximum(last_hi, np.where(mv, extub, 0)), last)
    e_start = np.where(
        mv,
        anchor - hours(rng.uniform(2.0, 30.0, m)),
        anchor + (v_start - 1) * DAY_S + hours(rng.uniform(0.1, 0.4, m)),
    )
    e_stop = np.where(
        v_end == last,
        anchor + (v_end - 1) * DAY_S + hours(rng.uniform(23.5, 23.8, m)),
        anchor + (v_end - 1) * DAY_S + hours(rng.uniform(24.5, 30.0, m)),
    )
    e_stop = np.minimum(e_stop, death_s)
    kind_u = rng.random(m)
    kind = np.where(
        mv | (kind_u < 0.45),
        EpisodeKind.INVASIVE_VENTILATION.value,
        np.where(kind_u < 0.9, EpisodeKind.NONINVASIVE_VENTILATION.value, EpisodeKind.CPAP.value),
    ).astype(object)
    vi = np.flatnonzero(v_on & (e_stop > e_start))
    parts = [(vi, kind[vi], e_start[vi], e_stop[vi])]
    # oxygen (not support) for patients not ventilated at baseline
    ox = np.flatnonzero(~mv & has_any)
    ox_start = anchor[ox] - hours(rng.uniform(1.0, 10.0, ox.size))
    ox_last = np.minimum(rng.integers(2, 7, ox.size), last[ox])
    ox_stop = anchor[ox] + (ox_last - 1) * DAY_S + hours(12.0)
    ox_stop = np.where(v_on[ox], np.minimum(ox_stop, e_start[ox] - 360), ox_stop)
    ox_stop = np.minimum(ox_stop, death_s[ox])
    ok = ox_stop > ox_start
    parts.append(
        (
            ox[ok],
            np.full(int(ok.sum()), EpisodeKind.OXYGEN.value, object),
            ox_start[ok],
            ox_stop[ok],
        )
    )
    # RRT (continuous haemofiltration) while renal >= 3 from day 1
    ren_hi = (lat[:, RENAL, :] >= 3) & charted
    run = np.cumprod(ren_hi, axis=1).sum(axis=1)  # consecutive days from day 1
    rr = np.flatnonzero((run >= 1) & (rng.random(m) < 0.6))
    rr_start = anchor[rr] - hours(rng.uniform(1.0, 12.0, rr.size))
    rr_stop = anchor[rr] + (run[rr] - 1) * DAY_S + hours(rng.uniform(12.0, 23.0, rr.size))
    rr_stop = np.minimum(rr_stop, death_s[rr])
    parts.append((rr, np.full(rr.size, EpisodeKind.RRT.value, object), rr_start, rr_stop))
    # sedation interruptions with a GCS charted inside (scored by the pre-sedation GCS)
    parts.append(
        (sp_pat, np.full(sp_pat.size, EpisodeKind.SEDATION.value, object), sed_start, sed_stop)
    )
    p = np.concatenate([x[0] for x in parts])
    k = np.concatenate([x[1] for x in parts])
    s = np.concatenate([x[2] for x in parts])
    e = np.concatenate([x[3] for x in parts])
    kc = np.searchsorted(_KINDS_SORTED, k)
    order = np.lexsort((kc, s, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "kind": k[order],
            "start": to_datetime(s[order]),
            "stop": to_datetime(e[order]),
        }
    )
