"""Seeded synthetic ImmunoSep-like trial in the raw long format. EVERYTHING HERE IS SYNTHETIC.

No row of this module's output describes a real person. Identifiers say so (``SYN-`` prefix:
patients ``SYN-<site>-<nnnn>``, sites ``SYN-S01``..., screening ids ``SYN-SCR-...``), the
``patients`` table carries ``synthetic = True``, and the screening-exclusion labels are
invented (the trial published only their counts, clinical.md 1.3 and 1.8.1).

What is reproduced (clinical.md section 1.8, SRC-AUDIT / SRC-JAMA-ABS) at the default size of
281 randomised patients, exactly: 672 screened, 391 excluded (355 + 14 + 8 + 5 + 2 + 2 + 2 + 2
+ 1), 281 randomised (135 / 146), 5 withdrawals with data removal (4 / 1), 276 analysed
(131 / 145), MALS 25 / 23, SIP 106 / 122, 33 sites in 6 countries, blood-sampling subset
59 / 66. Designed outcomes (the latent truth; the raw data encode them so that the project's
own SOFA engine recomputes them): primary responders 46 / 131 vs 26 / 145 (per stratum 12 / 25,
4 / 23, 34 / 106, 22 / 122), day-15 responders 52 / 131 vs 34 / 145 (per stratum 12 / 25,
5 / 23, 40 / 106, 29 / 122; deaths by day 15 never respond, day-9 responders alive on day 15
nearly always keep their response), deaths by day 9 21 / 29, by day 28 57 / 72, by day 90
90 / 98, day-9 LOCF (patients out of the ICU, alive, no day-9 data) 10 / 13, SIDF reversal
46 / 59 vs 32 / 66 as clinical.md 1.6 counts it (the blood-sampling subset, baseline = the
screening sample; :func:`core.phenotype.reversal_subset`), patients with a serious adverse
event 20 / 21 / 96 / 108 (1069 events). For another
``n_randomised`` every count is scaled proportionally (rounded half up; screening exclusions
by largest remainder); the 33 sites stay 33 at any size. Baseline covariates (age about 70, median baseline SOFA about 9,
mechanical ventilation 116 / 129) are drawn to match.

Generation (vectorised numpy, one ``numpy.random.Generator(PCG64(seed))``):

1. Trial flow and patients (arms, phenotypes, withdrawals, sites, randomisation times).
2. A latent day-1 SOFA per organ (Gaussian copula on a patient severity), deaths chosen by a
   risk ranking rising with baseline SOFA and MALS (exact counts per arm), responders among
   day-9 survivors and day-15 responders among day-15 survivors (exact counts per arm and
   stratum), ICU discharge (no data afterwards).
3. Daily organ trajectories for days 1..28 (recovery curve, late recovery or relapse after
   day 9, AR(1) noise, deterioration before death), with lab / blood-gas missingness, then the
   SAP endpoint (days 2..9) and the day-15 response (days 2..15) recomputed on the scores the
   engine will see (day 1 missing -> 0, LOCF, death = 24); trajectories that miss either
   designed status are redrawn (a deterministic course for the few left).
4. Raw, time-stamped values whose worst value per study day lies inside the band of that day's
   latent component (half-open intervals of clinical.md 2.8, with margins), charted several
   times a day; units partly SI (umol/L, kPa, FiO2 in %, 10^9/L, mcg/min) per site.

Scenario ``"null"`` uses the pooled published rates in both arms (no efficacy and no safety
signal). Nothing is time- or environment-dependent: the same arguments give byte-identical
frames.

Modules, in pipeline order: :mod:`~core.synth.published` (the published counts),
:mod:`~core.synth.flow` (1), :mod:`~core.synth.cohort` (2), :mod:`~core.synth.latent` (3),
:mod:`~core.synth.emit` (4: :mod:`~core.synth.charting`, :mod:`~core.synth.observations`,
:mod:`~core.synth.support`, :mod:`~core.synth.patients`, :mod:`~core.synth.biomarkers`,
:mod:`~core.synth.adverse`, :mod:`~core.synth.truth`), :mod:`~core.synth.generate`
(:func:`generate_trial`) and :mod:`~core.synth.trial` (:class:`SyntheticTrial`). Stages hand
frozen dataclasses to each other. Import from ``core.synth``.
"""

from __future__ import annotations

from core.synth._base import N_DAYS_MAX, ORGANS
from core.synth.generate import generate_trial
from core.synth.published import (
    N_RANDOMISED_PUBLISHED,
    N_SCREENED_PUBLISHED,
    SCREENING_EXCLUSIONS,
)
from core.synth.trial import SyntheticTrial, death_study_day

__all__ = [
    "N_DAYS_MAX",
    "N_RANDOMISED_PUBLISHED",
    "N_SCREENED_PUBLISHED",
    "ORGANS",
    "SCREENING_EXCLUSIONS",
    "SyntheticTrial",
    "death_study_day",
    "generate_trial",
]
