"""The generator's entry point: :func:`generate_trial` runs the four stages in order."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from core.synth._base import N_DAYS_MAX
from core.synth.cohort import draw_cohort
from core.synth.emit import emit_tables
from core.synth.flow import draw_flow
from core.synth.latent import draw_trajectories
from core.synth.published import ENROLMENT_DAYS, N_RANDOMISED_PUBLISHED
from core.synth.stays import stays_rng
from core.synth.trial import SyntheticTrial

__all__ = ["generate_trial"]


def generate_trial(
    *,
    seed: int = 20251208,
    n_randomised: int = N_RANDOMISED_PUBLISHED,
    scenario: Literal["published", "null"] = "published",
    n_days: int = N_DAYS_MAX,
    start: datetime = datetime(2021, 8, 5),
    enrolment_days: float = ENROLMENT_DAYS,
    charting: Literal["dense", "sparse"] = "dense",
) -> SyntheticTrial:
    """Generate a synthetic ImmunoSep-like trial (raw data; everything synthetic).

    Parameters
    ----------
    seed
        Seed of the ``numpy.random.Generator(PCG64(seed))`` that draws every table but
        ``icu_stays`` (drawn from its own stream, ``default_rng([seed, STAYS_STREAM])``, so
        adding it left the other tables unchanged); same arguments give byte-identical tables.
    n_randomised
        Randomised patients (281 as published); every count scales proportionally.
    scenario
        ``"published"``: arm differences as published; ``"null"``: pooled rates in both arms
        (no treatment effect on response, mortality, reversal or adverse events).
    n_days
        Study days with ICU charting (1..28).
    start
        First randomisation date (trial: 5 Aug 2021).
    enrolment_days
        Days over which randomisations are spread (trial: 900, about 5 Aug 2021 to Jan 2024).
        A shorter period packs the same patients closer in time, so that more are in the ICU
        at once (the served demo: :data:`core.io.demo.DEMO_ENROLMENT_DAYS`). Only times move:
        the random stream is the same, so every other value is identical for any period.
    charting
        ``"dense"``: MAP 4-6x, GCS 2-3x, blood gases 1-3x, labs 1-2x, urine every 4 h per day;
        ``"sparse"``: one charting per variable and day, urine every 8 h (for 100,000 patients).

    Returns
    -------
    SyntheticTrial

    Notes
    -----
    Times are timezone-naive UTC ``datetime64[ns]`` rounded to the second. Observations lie
    strictly inside study days 1..``n_days`` (never on a day boundary), never before the
    anchor (first study-drug dose) and never at or after death. Missing data: bilirubin is
    not drawn on about 12 % of days, platelets on 5 %, blood gases on 6 % (the engine carries
    the component forward; day 1 missing scores 0); patients leave the ICU (no further
    charting) so that about 8 % have no day-9 data while alive, as published.
    """
    if scenario not in ("published", "null"):
        raise ValueError(f"scenario must be 'published' or 'null', got {scenario!r}")
    if charting not in ("dense", "sparse"):
        raise ValueError(f"charting must be 'dense' or 'sparse', got {charting!r}")
    if not 10 <= int(n_randomised) <= 2_000_000:
        raise ValueError(f"n_randomised must be between 10 and 2,000,000, got {n_randomised}")
    if not 1.0 <= float(enrolment_days) <= 36_500.0:
        raise ValueError(f"enrolment_days must be between 1 and 36,500, got {enrolment_days}")
    if not 9 <= int(n_days) <= N_DAYS_MAX:
        raise ValueError(f"n_days must be between 9 and {N_DAYS_MAX}, got {n_days}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    null = scenario == "null"
    n = int(n_randomised)
    start_s = int((pd.Timestamp(start) - pd.Timestamp(0)) // pd.Timedelta(seconds=1))

    flow = draw_flow(rng, n, start_s, float(enrolment_days))
    cohort = draw_cohort(rng, flow, null=null)
    latent = draw_trajectories(rng, cohort, n_days=n_days)
    tables = emit_tables(
        rng,
        flow,
        cohort,
        latent,
        n_days=n_days,
        dense=charting == "dense",
        null=null,
        stays_rng=stays_rng(int(seed)),
    )
    return SyntheticTrial(**tables, seed=int(seed), scenario=scenario)
