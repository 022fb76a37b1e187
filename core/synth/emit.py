"""Stage 4, emission: every raw table (and the design tables) from the latent cohort.

The order of the calls below is the order of the random draws: changing it changes every
table after the change. ``icu_stays`` draws from its own stream (``stays_rng``), last, so it
never shifts the draws of the other tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.synth.adverse import emit_adverse_events
from core.synth.biomarkers import emit_biomarkers
from core.synth.charting import chart_grid
from core.synth.cohort import Cohort
from core.synth.flow import Flow
from core.synth.latent import Latent
from core.synth.observations import emit_observations
from core.synth.patients import emit_disposition, emit_doses, emit_patients
from core.synth.stays import emit_icu_stays
from core.synth.support import emit_episodes, emit_infusions
from core.synth.truth import design_truth

__all__ = ["emit_tables"]


def emit_tables(
    rng: np.random.Generator,
    flow: Flow,
    c: Cohort,
    latent: Latent,
    *,
    n_days: int,
    dense: bool,
    null: bool,
    stays_rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """All tables from the latent cohort (raw values land in the latent score bands).

    ``rng`` draws every table but ``icu_stays``, which draws from ``stays_rng``
    (:func:`core.synth.stays.stays_rng`).

    Returns
    -------
    dict
        Table name -> frame, one per :class:`~core.synth.trial.SyntheticTrial` table field.
    """
    ch = chart_grid(rng, flow, c, latent, n_days=n_days)
    observations, sedation = emit_observations(rng, ch, c, dense=dense)
    infusions = emit_infusions(rng, ch)
    episodes = emit_episodes(rng, c, latent, ch, sedation, n_days=n_days)
    patients, randomisation = emit_patients(rng, flow, c, ch)
    sampling = emit_biomarkers(rng, c, ch, null=null)
    doses = emit_doses(rng, ch)
    adverse_events = emit_adverse_events(rng, c, ch, null=null)
    disposition = emit_disposition(rng, flow, sampling.table)
    truth, latent_daily = design_truth(c, latent, sampling, ch.pid, n_days=n_days)
    icu_stays = emit_icu_stays(
        stays_rng,
        c,
        ch,
        patients["site_id"].to_numpy(),
        n_days=n_days,
        observations=observations,
        infusions=infusions,
        episodes=episodes,
    )
    return {
        "sites": flow.sites,
        "patients": patients,
        "icu_stays": icu_stays,
        "randomisation": randomisation,
        "observations": observations,
        "infusions": infusions,
        "episodes": episodes,
        "biomarkers": sampling.table,
        "doses": doses,
        "adverse_events": adverse_events,
        "disposition": disposition,
        "truth": truth,
        "latent_daily": latent_daily,
    }
