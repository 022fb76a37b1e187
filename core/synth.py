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
4 / 23, 34 / 106, 22 / 122), deaths by day 9 21 / 29, by day 28 57 / 72, by day 90 90 / 98,
day-9 LOCF (patients out of the ICU, alive, no day-9 data) 10 / 13, SIDF reversal 46 / 59 vs
32 / 66, patients with a serious adverse event 20 / 21 / 96 / 108 (1069 events). For another
``n_randomised`` every count is scaled proportionally (rounded half up; screening exclusions
by largest remainder); the 33 sites stay 33 at any size. Baseline covariates (age about 70, median baseline SOFA about 9,
mechanical ventilation 116 / 129) are drawn to match.

Generation (vectorised numpy, one ``numpy.random.Generator(PCG64(seed))``):

1. Trial flow and patients (arms, phenotypes, withdrawals, sites, randomisation times).
2. A latent day-1 SOFA per organ (Gaussian copula on a patient severity), deaths chosen by a
   risk ranking rising with baseline SOFA and MALS (exact counts per arm), responders among
   day-9 survivors (exact counts per arm and stratum), ICU discharge (no data afterwards).
3. Daily organ trajectories for days 1..28 (recovery curve, AR(1) noise, deterioration before
   death), with lab / blood-gas missingness, then the SAP endpoint recomputed on the scores the
   engine will see (day 1 missing -> 0, LOCF, death = 24); trajectories that miss their
   designed responder status are redrawn.
4. Raw, time-stamped values whose worst value per study day lies inside the band of that day's
   latent component (half-open intervals of clinical.md 2.8, with margins), charted several
   times a day; units partly SI (umol/L, kPa, FiO2 in %, 10^9/L, mcg/min) per site.

Scenario ``"null"`` uses the pooled published rates in both arms (no efficacy and no safety
signal). Nothing is time- or environment-dependent: the same arguments give byte-identical
frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar, Final, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from core.vocab import RAW_TABLES, Arm, Organ, Phenotype

__all__ = ["SCREENING_EXCLUSIONS", "SyntheticTrial", "death_study_day", "generate_trial"]

# --- published shape (clinical.md 1.8; SRC-AUDIT, SRC-JAMA-ABS) ------------------------------
N_RANDOMISED_PUBLISHED: Final = 281
N_SCREENED_PUBLISHED: Final = 672
#: synthetic labels of the 391 screening exclusions; counts as published [S], labels invented
#: (clinical.md 1.3: the 355 were most likely immune-state ineligible [U for the label])
SCREENING_EXCLUSIONS: Final = (
    (
        (
            "immune state not eligible (ferritin ≤ 4420 ng/mL and HLA-DR ≥ 5000 AB/C)"
            " [synthetic label]"
        ),
        355,
    ),
    ("more than 72 h from Sepsis-3 classification to study drug [synthetic label]", 14),
    ("neutropenia below the protocol threshold [synthetic label]", 8),
    ("consent refused [synthetic label]", 5),
    ("stage IV malignancy [synthetic label]", 2),
    ("do-not-resuscitate decision [synthetic label]", 2),
    ("HLA-DR not available (sample outside the transport window) [synthetic label]", 2),
    ("COVID-19 with immunoparalysis (MALS pathway only) [synthetic label]", 2),
    ("pregnancy [synthetic label]", 1),
)
#: phenotype at screening per exclusion row above (None = MALS or SIP drawn at random)
_EXCLUSION_PHENOTYPE: Final = (
    Phenotype.NOT_ELIGIBLE.value,
    None,
    None,
    None,
    None,
    None,
    Phenotype.PENDING.value,
    Phenotype.SIP.value,
    None,
)

#: (events, denominator) per arm: precision, placebo (clinical.md 1.8.1 and 1.8.3)
_PUB: Final = MappingProxyType(
    {
        "randomised": ((135, 281), (146, 281)),
        "withdrawn": ((4, 281), (1, 281)),
        "mals": ((25, 131), (23, 145)),
        "subset": ((59, 131), (66, 145)),
        "mv": ((116, 131), (129, 145)),
        "dead9": ((21, 131), (29, 145)),
        "dead28": ((57, 131), (72, 145)),
        "dead90": ((90, 131), (98, 145)),
        "locf9": ((10, 131), (13, 145)),
        "resp_mals": ((12, 25), (4, 23)),
        "resp_sip": ((34, 106), (22, 122)),
        "reversal": ((46, 59), (32, 66)),
        "sae_mals": ((20, 25), (21, 23)),
        "sae_sip": ((96, 106), (108, 122)),
        "female": ((42, 131), (51, 145)),
    }
)
_SAE_EVENTS: Final = (1069, 276)

#: (country, number of sites, relative patients per site); most patients in Greece [U names]
_COUNTRIES: Final = (
    ("Greece", 20, 3.0),
    ("Netherlands", 4, 1.3),
    ("Germany", 3, 1.0),
    ("Switzerland", 2, 0.8),
    ("Romania", 2, 1.1),
    ("Italy", 2, 0.9),
)
#: unit conventions per country (synthetic): SI chemistry, PaO2 in kPa, FiO2 in %,
#: platelets in 10^9/L, vasopressors in mcg/min
_UNITS_BY_COUNTRY: Final = MappingProxyType(
    {
        "Greece": (False, False, False, False, False),
        "Netherlands": (True, True, True, True, True),
        "Germany": (False, False, True, False, False),
        "Switzerland": (True, True, True, True, True),
        "Romania": (False, False, False, False, False),
        "Italy": (False, False, True, False, False),
    }
)
_ENROLMENT_DAYS: Final = 900.0  # 5 Aug 2021 .. about Jan 2024, so day 90 ends by Apr 2024
_INFECTIONS: Final = (
    ("community-acquired pneumonia", 0.37),
    ("hospital-acquired pneumonia", 0.24),
    ("ventilator-associated pneumonia", 0.27),
    ("primary bacteraemia", 0.105),
    ("pneumonia with secondary bacteraemia", 0.015),
)

# --- latent SOFA ------------------------------------------------------------------------------
ORGANS: Final = (
    Organ.RESPIRATION,
    Organ.COAGULATION,
    Organ.LIVER,
    Organ.CARDIOVASCULAR,
    Organ.CNS,
    Organ.RENAL,
)
_RESP, _COAG, _LIVER, _CARD, _CNS, _RENAL = range(6)
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
N_DAYS_MAX: Final = 28
_DAY_S: Final = 86_400
_HOUR_S: Final = 3_600

# bands of raw values per score 0..4 (inside the half-open SOFA intervals, with margins)
_PF_BANDS: Final = ((410, 520), (310, 390), (210, 290), (112, 190), (56, 95))
_PLT_BANDS: Final = ((155, 380), (102, 147), (52, 97), (21, 48), (4, 18))
_BILI_BANDS: Final = ((0.3, 1.1), (1.26, 1.9), (2.1, 5.7), (6.2, 11.5), (12.5, 22.0))
_CREA_BANDS: Final = ((0.5, 1.12), (1.27, 1.92), (2.08, 3.4), (3.58, 4.9), (5.1, 8.5))
_GCS_BANDS: Final = ((15, 15), (13, 14), (10, 12), (6, 9), (3, 5))
_BILI_UMOL_PER_MG: Final = 17.1
_CREA_UMOL_PER_MG: Final = 88.4
_KPA_TO_MMHG: Final = 7.50062
_FIO2_GRID: Final = (0.21, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# --- adverse events (MedDRA-like SOC / PT; weights invented, signals as published) -----------
#: (soc, pt, weight, aesi)
_SAE_TERMS: Final = (
    ("Infections and infestations", "Septic shock", 12.0, None),
    ("Infections and infestations", "Pneumonia", 8.0, None),
    ("Infections and infestations", "Ventilator-associated pneumonia", 5.0, None),
    ("Infections and infestations", "Bacteraemia", 4.0, None),
    ("Infections and infestations", "Candidaemia", 2.0, None),
    (
        "Respiratory, thoracic and mediastinal disorders",
        "Acute respiratory distress syndrome",
        5.0,
        None,
    ),
    ("Respiratory, thoracic and mediastinal disorders", "Respiratory failure", 6.0, None),
    ("Cardiac disorders", "Cardiac arrest", 5.0, None),
    ("Cardiac disorders", "Atrial fibrillation", 4.0, None),
    ("Cardiac disorders", "Bradycardia", 2.0, None),
    ("Vascular disorders", "Haemorrhage", 1.5, "hemorrhage"),
    ("Vascular disorders", "Hypotension", 3.0, None),
    ("Vascular disorders", "Deep vein thrombosis", 1.0, None),
    ("Blood and lymphatic system disorders", "Anaemia", 2.0, "anemia"),
    ("Blood and lymphatic system disorders", "Thrombocytopenia", 2.0, None),
    ("Blood and lymphatic system disorders", "Disseminated intravascular coagulation", 1.5, None),
    ("Gastrointestinal disorders", "Gastrointestinal haemorrhage", 1.5, "hemorrhage"),
    ("Gastrointestinal disorders", "Ileus", 1.5, None),
    ("Renal and urinary disorders", "Acute kidney injury", 6.0, None),
    (
        "General disorders and administration site conditions",
        "Multiple organ dysfunction syndrome",
        10.0,
        None,
    ),
    ("Metabolism and nutrition disorders", "Metabolic acidosis", 2.0, None),
    ("Nervous system disorders", "Cerebral haemorrhage", 0.5, "hemorrhage"),
    ("Nervous system disorders", "Encephalopathy", 1.5, None),
    ("Hepatobiliary disorders", "Hepatic failure", 1.5, None),
)
_NONSERIOUS_TERMS: Final = (
    ("Investigations", "Blood creatinine increased", 3.0, None),
    ("Investigations", "Gamma-glutamyltransferase increased", 2.5, None),
    ("Investigations", "Blood fibrinogen decreased", 1.5, None),
    ("Metabolism and nutrition disorders", "Hypokalaemia", 3.0, None),
    ("Metabolism and nutrition disorders", "Hyperglycaemia", 2.5, None),
    ("Gastrointestinal disorders", "Constipation", 2.5, None),
    ("Gastrointestinal disorders", "Ileus", 1.5, None),
    ("Psychiatric disorders", "Delirium", 2.5, None),
    ("Cardiac disorders", "Bradycardia", 2.0, None),
    ("Blood and lymphatic system disorders", "Anaemia", 2.0, "anemia"),
    ("Skin and subcutaneous tissue disorders", "Pressure ulcer", 1.5, None),
    ("Vascular disorders", "Haemorrhage", 0.8, "hemorrhage"),
    ("General disorders and administration site conditions", "Pyrexia", 2.0, None),
)
#: multipliers of term weights on an active product (published scenario only): more anaemia
#: with anakinra, less ileus; more haemorrhage, creatinine increase, fibrinogen decrease and
#: GGT increase, less bradycardia with rhIFN-gamma (clinical.md 1.8.4) [weights U]
_ANAKINRA_FACTORS: Final = MappingProxyType({"Anaemia": 2.5, "Ileus": 0.4})
_IFN_FACTORS: Final = MappingProxyType(
    {
        "Haemorrhage": 2.5,
        "Gastrointestinal haemorrhage": 2.5,
        "Cerebral haemorrhage": 2.0,
        "Bradycardia": 0.4,
        "Blood creatinine increased": 2.0,
        "Blood fibrinogen decreased": 2.0,
        "Gamma-glutamyltransferase increased": 2.0,
    }
)


@dataclass(frozen=True)
class SyntheticTrial:
    """A synthetic ImmunoSep-like trial: the raw tables of docs/architecture.md plus truth.

    Attributes
    ----------
    sites, patients, randomisation, observations, infusions, episodes, biomarkers, doses,
    adverse_events, disposition
        The raw long-format tables (column names and units of docs/architecture.md).
        Withdrawn patients (consent withdrawn with data removal) appear only in
        ``randomisation`` and ``disposition``.
    truth
        Per analysed patient the design: ``patient_id, arm, phenotype, baseline_sofa,
        designed_responder, latent_sofa_decrease, death_study_day, last_icu_day,
        in_sampling_subset, designed_reversal``. For calibration tests only; contains the arm.
    latent_daily
        The daily SOFA components a correct engine recomputes from the raw data, one row per
        patient and charted study day before the day of death: ``patient_id, study_day,
        sofa_<organ>..., sofa_total`` (missing-component policy already applied).
    seed, scenario
        The generation arguments.
    """

    sites: pd.DataFrame
    patients: pd.DataFrame
    randomisation: pd.DataFrame
    observations: pd.DataFrame
    infusions: pd.DataFrame
    episodes: pd.DataFrame
    biomarkers: pd.DataFrame
    doses: pd.DataFrame
    adverse_events: pd.DataFrame
    disposition: pd.DataFrame
    truth: pd.DataFrame
    latent_daily: pd.DataFrame
    seed: int
    scenario: str

    #: names of the raw tables (docs/architecture.md), in a stable order
    TABLES: ClassVar[tuple[str, ...]] = RAW_TABLES

    def tables(self) -> dict[str, pd.DataFrame]:
        """The raw tables by name (a new dict; the frames themselves are shared)."""
        return {name: getattr(self, name) for name in self.TABLES}


# --- small helpers ----------------------------------------------------------------------------


def _r(x: float) -> int:
    """Round half up (deterministic, no banker's rounding)."""
    return math.floor(x + 0.5)


def _scaled(key: str, arm: int, n: float, *, null: bool = False) -> int:
    """Published count ``key`` for ``arm`` (0 precision, 1 placebo) scaled to denominator n."""
    pairs = _PUB[key]
    if null:
        num = sum(p[0] for p in pairs)
        den = sum(p[1] for p in pairs)
        return _r(n * num / den)
    num, den = pairs[arm]
    return _r(n * num / den)


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Largest-remainder integer split of ``total`` proportional to ``weights``."""
    w = np.asarray(weights, dtype=float)
    q = total * w / w.sum()
    base = np.floor(q).astype(np.int64)
    rem = int(total - base.sum())
    order = np.argsort(-(q - base), kind="stable")
    base[order[:rem]] += 1
    return base


def _choose(rng: np.random.Generator, eligible: np.ndarray, k: int, logw: np.ndarray) -> np.ndarray:
    """Weighted sampling without replacement of k among ``eligible`` (Gumbel top-k)."""
    keys = logw + rng.gumbel(size=eligible.size)
    keys = np.where(eligible, keys, -np.inf)
    k = min(k, int(eligible.sum()))
    out = np.zeros(eligible.size, dtype=bool)
    if k > 0:
        out[np.argsort(-keys, kind="stable")[:k]] = True
    return out


def _cat(u: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Category 0..len-1 for uniform u under ``probs`` (inverse CDF)."""
    cum = np.cumsum(probs)[:-1] / np.sum(probs)
    return np.searchsorted(cum, u, side="right").astype(np.int64)


def _band(
    rng: np.random.Generator, score: np.ndarray, bands: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """Uniform raw value inside the band of each score."""
    lo = np.asarray([b[0] for b in bands], dtype=float)[score]
    hi = np.asarray([b[1] for b in bands], dtype=float)[score]
    return lo + rng.random(score.size) * (hi - lo)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, position within owner) for ``counts[i]`` items per owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(owner.size) - starts[owner]
    return owner, pos


def _to_datetime(seconds: np.ndarray) -> np.ndarray:
    return np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")


def _hours(x: np.ndarray) -> np.ndarray:
    """Hours (float) -> whole seconds (int64)."""
    return np.rint(np.asarray(x, dtype=float) * _HOUR_S).astype(np.int64)


def death_study_day(patients: pd.DataFrame) -> pd.Series:
    """Study day of death: floor((death_time - anchor_time) / 24 h) + 1, missing if alive.

    Parameters
    ----------
    patients
        ``anchor_time`` and ``death_time`` (NaT if alive), datetime64.

    Returns
    -------
    Series
        ``Int64`` (nullable), same index as ``patients``, named ``death_study_day``.
    """
    delta = pd.to_datetime(patients["death_time"]) - pd.to_datetime(patients["anchor_time"])
    days = np.floor(delta / pd.Timedelta(hours=24)) + 1
    return pd.Series(days, index=patients.index, name="death_study_day").astype("Int64")


# --- generator --------------------------------------------------------------------------------


def generate_trial(
    *,
    seed: int = 20251208,
    n_randomised: int = N_RANDOMISED_PUBLISHED,
    scenario: Literal["published", "null"] = "published",
    n_days: int = N_DAYS_MAX,
    start: datetime = datetime(2021, 8, 5),
    charting: Literal["dense", "sparse"] = "dense",
) -> SyntheticTrial:
    """Generate a synthetic ImmunoSep-like trial (raw data; everything synthetic).

    Parameters
    ----------
    seed
        Seed of the single ``numpy.random.Generator(PCG64(seed))``; same arguments give
        byte-identical tables.
    n_randomised
        Randomised patients (281 as published); every count scales proportionally.
    scenario
        ``"published"``: arm differences as published; ``"null"``: pooled rates in both arms
        (no treatment effect on response, mortality, reversal or adverse events).
    n_days
        Study days with ICU charting (1..28).
    start
        First randomisation date (trial: 5 Aug 2021).
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
    if not 9 <= int(n_days) <= N_DAYS_MAX:
        raise ValueError(f"n_days must be between 9 and {N_DAYS_MAX}, got {n_days}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    null = scenario == "null"
    n = int(n_randomised)
    start_s = int((pd.Timestamp(start) - pd.Timestamp(0)) // pd.Timedelta(seconds=1))

    flow = _flow(rng, n, start_s)
    cohort = _cohort(rng, flow, null=null)
    _trajectories(rng, cohort, n_days=n_days)
    tables = _emit(rng, flow, cohort, n_days=n_days, dense=charting == "dense", null=null)
    return SyntheticTrial(**tables, seed=int(seed), scenario=scenario)


# --- 1. flow: screening, randomisation, withdrawals, sites -----------------------------------


def _flow(rng: np.random.Generator, n: int, start_s: int) -> dict[str, object]:
    n_arm = np.array([_scaled("randomised", 0, n), 0])
    n_arm[1] = n - n_arm[0]
    withdrawn = np.array([_scaled("withdrawn", a, n) for a in (0, 1)])
    analysed = n_arm - withdrawn
    mals = np.array([_scaled("mals", a, analysed[a]) for a in (0, 1)])
    # withdrawn: precision 1 MALS + 3 SIP, placebo 1 SIP (invented split)
    w_mals = np.array([_r(withdrawn[0] / 4), 0])

    arm = np.concatenate([np.zeros(n_arm[0], np.int64), np.ones(n_arm[1], np.int64)])
    is_mals = np.zeros(n, bool)
    is_wd = np.zeros(n, bool)
    for a, off in ((0, 0), (1, n_arm[0])):
        # layout inside an arm: [analysed MALS | analysed SIP | withdrawn MALS | withdrawn SIP]
        is_mals[off : off + mals[a]] = True
        w0 = off + analysed[a]
        is_mals[w0 : w0 + w_mals[a]] = True
        is_wd[w0 : w0 + withdrawn[a]] = True
    perm = rng.permutation(n)
    arm, is_mals, is_wd = arm[perm], is_mals[perm], is_wd[perm]

    # sites and countries
    country_of_site: list[str] = []
    site_w: list[float] = []
    for country, k, w in _COUNTRIES:
        country_of_site += [country] * k
        site_w += [w] * k
    n_sites = len(country_of_site)
    site_w_arr = np.asarray(site_w) * rng.gamma(4.0, 0.25, n_sites)
    site_counts = _apportion(n, site_w_arr)
    site_of = rng.permutation(np.repeat(np.arange(n_sites), site_counts))

    rand_s = start_s + np.sort(_hours(rng.random(n) * _ENROLMENT_DAYS * 24 + 8.0))
    # patient ids: SYN-<site>-<nnnn>, numbered per site in randomisation order
    seq = np.zeros(n, np.int64)
    for s in range(n_sites):
        m = np.flatnonzero(site_of == s)
        seq[m] = np.arange(1, m.size + 1)
    width = max(4, len(str(int(site_counts.max(initial=1)))))
    pid = np.array(
        [f"SYN-{s + 1:02d}-{q:0{width}d}" for s, q in zip(site_of, seq, strict=True)], dtype=object
    )
    site_ids = np.array([f"SYN-S{s + 1:02d}" for s in range(n_sites)], dtype=object)
    sites = pd.DataFrame(
        {
            "site_id": site_ids,
            "name": [f"Synthetic ICU {s + 1:02d} ({c})" for s, c in enumerate(country_of_site)],
            "country": np.array(country_of_site, dtype=object),
        }
    )
    return {
        "n": n,
        "arm": arm,
        "is_mals": is_mals,
        "withdrawn": is_wd,
        "site": site_of,
        "site_ids": site_ids,
        "country": np.array(country_of_site, dtype=object),
        "site_weights": site_w_arr,
        "randomised_s": rand_s,
        "patient_id": pid,
        "sites": sites,
        "start_s": start_s,
    }


# --- 2. cohort: baseline, deaths, responders, discharge ---------------------------------------


def _cohort(rng: np.random.Generator, flow: dict, *, null: bool) -> dict[str, np.ndarray]:
    keep = np.flatnonzero(~flow["withdrawn"])
    # analysed patients in patient_id order (deterministic output order)
    keep = keep[np.argsort(flow["patient_id"][keep].astype(str), kind="stable")]
    m = keep.size
    arm = flow["arm"][keep]
    mals = flow["is_mals"][keep]
    rand_s = flow["randomised_s"][keep]
    anchor_s = rand_s + _hours(rng.uniform(1.0, 6.0, m))

    sev = rng.standard_normal(m) + 0.3 * mals
    age = np.clip(np.rint(rng.normal(70.0, 11.5, m) + 1.5 * sev), 19, 97).astype(np.int64)
    # mechanical ventilation: exact counts per arm, more likely when severe
    mv = np.zeros(m, bool)
    female = np.zeros(m, bool)
    for a in (0, 1):
        in_arm = arm == a
        n_a = int(in_arm.sum())
        mv |= _choose(rng, in_arm, _scaled("mv", a, n_a, null=null), 0.6 * sev)
        female |= _choose(rng, in_arm, _scaled("female", a, n_a, null=null), np.zeros(m))

    # day-1 organ scores: Gaussian copula on the severity
    z = 0.55 * sev[:, None] + math.sqrt(1 - 0.55**2) * rng.standard_normal((m, 6))
    u = ndtr(z)
    base = np.zeros((m, 6), np.int64)
    base[:, _RESP] = np.where(mv, _cat(u[:, 0], _RESP_PROBS_MV), _cat(u[:, 0], _RESP_PROBS_NO_MV))
    for o in range(1, 6):
        base[:, o] = _cat(u[:, o], _BASE_PROBS[o])

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
        d90 = _choose(rng, in_arm, _scaled("dead90", a, n_a, null=null), logw)
        d28 = _choose(rng, d90, _scaled("dead28", a, n_a, null=null), 0.2 * s1)
        d9 = _choose(rng, d28, _scaled("dead9", a, n_a, null=null), 0.2 * s1)
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
            k = _scaled(key, a, int(grp.sum()), null=null)
            responder |= _choose(rng, grp & alive9 & (s1 >= 3), k, rlogw)

    # ICU discharge (no charting afterwards): exact day-9 LOCF counts, then more after day 9
    last_icu = np.full(m, N_DAYS_MAX, np.int64)
    for a in (0, 1):
        in_arm = arm == a
        k = _scaled("locf9", a, int(in_arm.sum()), null=null)
        early = _choose(rng, in_arm & alive9, k, 1.0 * responder - 0.1 * s1)
        last_icu[early] = rng.integers(4, 9, int(early.sum()))
    late_pool = (death_day > 28) & (last_icu == N_DAYS_MAX)
    late_dc = late_pool & (rng.random(m) < 0.55)
    last_icu[late_dc] = rng.integers(10, 28, int(late_dc.sum()))
    dd = np.where(np.isfinite(death_day), death_day, 10_000).astype(np.int64)
    last_day = np.minimum(last_icu, dd)  # last study day with charting (death day: partial)

    return {
        "index": keep,
        "m": m,
        "arm": arm,
        "mals": mals,
        "anchor_s": anchor_s,
        "randomised_s": rand_s,
        "age": age,
        "female": female,
        "mv": mv,
        "sev": sev,
        "base": base,
        "observed": observed,
        "s1": s1,
        "death_day": death_day,
        "responder": responder,
        "last_icu": last_icu,
        "last_day": last_day,
    }


# --- 3. trajectories ------------------------------------------------------------------------


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
    tot = eff[:, :, :9].sum(axis=1).astype(float)
    days = np.arange(1, 10)
    tot = np.where(days[None, :] >= death_day[:, None], 24.0, tot)
    tot[:, 0] = eff[:, :, 0].sum(axis=1)
    return tot[:, 0] - tot[:, 1:].mean(axis=1)


def _draw_latent(
    rng: np.random.Generator,
    base: np.ndarray,
    responder: np.ndarray,
    death_day: np.ndarray,
    n_d: int,
) -> np.ndarray:
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


def _trajectories(rng: np.random.Generator, c: dict, *, n_days: int) -> None:
    """Latent daily organ scores with the designed responder status (redraw until it holds)."""
    m = c["m"]
    n_d = N_DAYS_MAX
    lat = np.zeros((m, 6, n_d), np.int64)
    eff = np.zeros_like(lat)
    last_icu = np.minimum(c["last_icu"], n_days)
    need = np.ones(m, bool)
    for _ in range(60):
        idx = np.flatnonzero(need)
        if idx.size == 0:
            break
        lat[idx] = _draw_latent(rng, c["base"][idx], c["responder"][idx], c["death_day"][idx], n_d)
        eff[idx] = _effective(lat[idx], c["observed"][idx], last_icu[idx])
        ok = (_delta(eff[idx], c["death_day"][idx]) > 1.4) == c["responder"][idx]
        need[idx[ok]] = False
    idx = np.flatnonzero(need)
    if idx.size:  # deterministic fallback (rare): flat course, or a 2-point drop from day 2
        drop = np.where(c["responder"][idx, None, None], 2, 0)
        lat[idx, :, 1:] = np.maximum(c["base"][idx, :, None] - drop, 0)
        c["observed"][idx, :, 1:9] = True
        eff[idx] = _effective(lat[idx], c["observed"][idx], last_icu[idx])
    c["latent"] = lat
    c["effective"] = eff
    c["delta"] = _delta(eff, c["death_day"])


# --- 4. emission ----------------------------------------------------------------------------


class _Rows:
    """Collects observation rows as integer-coded arrays (no per-row Python objects)."""

    VARIABLES: Final = (
        "pao2",
        "fio2",
        "platelets",
        "bilirubin",
        "creatinine",
        "map",
        "gcs_total",
        "urine_output",
        "weight",
        "lactate",
    )
    UNITS: Final = (
        "mmHg",
        "kPa",
        "fraction",
        "%",
        "10^3/uL",
        "10^9/L",
        "mg/dL",
        "umol/L",
        "points",
        "mL",
        "kg",
        "mmol/L",
    )
    SOURCES: Final = ("blood_gas", "ventilator", "lab", "monitor", "nursing")

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, pat, time_s, var: str, value, unit, source: str) -> None:
        k = np.asarray(pat).size
        unit_code = np.broadcast_to(np.asarray(unit, dtype=np.int64), (k,))
        self.parts.append(
            (
                np.asarray(pat, np.int64),
                np.asarray(time_s, np.int64),
                np.full(k, self.VARIABLES.index(var), np.int64),
                np.asarray(value, float),
                unit_code.astype(np.int64),
                np.full(k, self.SOURCES.index(source), np.int64),
            )
        )

    @classmethod
    def unit(cls, name: str) -> int:
        return cls.UNITS.index(name)


def _slot_times(rng, counts: np.ndarray, lo_h: float, hi_h: float):
    """Charting offsets (hours) inside a day: k evenly spread jittered slots per owner."""
    owner, pos = _expand(counts)
    k = counts[owner]
    width = (hi_h - lo_h) / k
    off = lo_h + (pos + rng.uniform(0.3, 0.9, owner.size)) * width
    return owner, pos, off


def _emit(rng, flow: dict, c: dict, *, n_days: int, dense: bool, null: bool) -> dict:
    """All tables from the latent cohort (raw values land in the latent score bands)."""
    m = c["m"]
    keep = c["index"]
    pid_all = flow["patient_id"]
    pid = pid_all[keep]
    site = flow["site"][keep]
    country = flow["country"][site]
    conv = np.array([_UNITS_BY_COUNTRY[str(x)] for x in country], dtype=bool).reshape(m, 5)
    si_chem, kpa, fio2_pct, plt_1e9, mcg_min = conv.T
    anchor = c["anchor_s"]
    death_day = c["death_day"]
    death_s = np.where(
        np.isfinite(death_day),
        anchor
        + (np.where(np.isfinite(death_day), death_day, 1) - 1).astype(np.int64) * _DAY_S
        + _hours(rng.uniform(1.0, 23.0, m)),
        np.iinfo(np.int64).max,
    )
    weight = np.round(np.clip(rng.normal(78.0, 15.0, m), 45.0, 160.0), 1)
    lat = c["latent"]
    obs_flags = c["observed"]

    # patient-days with charting: days 1..min(last_icu, death day, n_days)
    last = np.minimum(c["last_day"], n_days)
    pd_pat, pd_pos = _expand(last)
    pd_day = pd_pos + 1
    day0 = anchor[pd_pat] + (pd_day - 1) * _DAY_S  # study-day start (s)
    cutoff = np.minimum(death_s[pd_pat], day0 + _DAY_S)  # exclusive
    npd = pd_pat.size
    sc = lat[pd_pat, :, pd_day - 1]  # latent score of the day, per organ
    ob = obs_flags[pd_pat, :, pd_day - 1]
    rows = _Rows()

    def keep_alive(pd_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        return t < cutoff[pd_idx] - 60

    # ---- MAP (cardiovascular; 1 if min MAP < 70) --------------------------------------------
    k_map = rng.integers(4, 7, npd) if dense else np.ones(npd, np.int64)
    own, pos, off = _slot_times(rng, k_map, 0.2, 23.8)
    worst = rng.integers(0, k_map)[own] == pos
    card = sc[own, _CARD]
    wv = np.where(
        card == 0,
        rng.uniform(72, 88, own.size),
        np.where(card == 1, rng.uniform(52, 68, own.size), rng.uniform(58, 82, own.size)),
    )
    val = np.rint(np.where(worst, wv, wv + rng.uniform(0, 22, own.size)))
    t = day0[own] + _hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "map", val[ok], _Rows.unit("mmHg"), "monitor")

    # ---- GCS (CNS), with a few sedation episodes ---------------------------------------------
    mv_vent_day = c["mv"][pd_pat] & (pd_day <= 9) & (pd_day < np.minimum(death_day[pd_pat], 99))
    sed_pd = mv_vent_day & (rng.random(npd) < 0.04)
    k_gcs = np.where(sed_pd, 3, rng.integers(2, 4, npd) if dense else 1)
    own, pos, off = _slot_times(rng, k_gcs, 0.5, 23.5)
    g_lo = np.asarray([b[0] for b in _GCS_BANDS])[sc[:, _CNS]]
    g_hi = np.asarray([b[1] for b in _GCS_BANDS])[sc[:, _CNS]]
    band_v = rng.integers(g_lo, g_hi + 1)  # the day's worst GCS, inside the band
    is_sed = sed_pd[own]
    worst = np.where(is_sed, pos == 0, rng.integers(0, k_gcs)[own] == pos)
    bv = band_v[own]
    val = np.where(worst, bv, np.minimum(bv + rng.integers(0, 3, own.size), 15)).astype(float)
    # sedation day layout: GCS v at 1-3 h, sedation from +1-2 h, GCS 3 inside, stop, GCS after
    sp = np.flatnonzero(sed_pd)
    t1 = rng.uniform(1.0, 3.0, sp.size)
    s_start = t1 + rng.uniform(1.0, 2.0, sp.size)
    t2 = s_start + rng.uniform(1.0, 2.0, sp.size)
    s_stop = t2 + rng.uniform(1.0, 4.0, sp.size)
    t3 = s_stop + rng.uniform(1.0, 3.0, sp.size)
    sed_lookup = np.full(npd, -1)
    sed_lookup[sp] = np.arange(sp.size)
    j = sed_lookup[own]
    off = np.where(
        is_sed,
        np.choose(pos.clip(0, 2), [t1[j.clip(0)], t2[j.clip(0)], t3[j.clip(0)]]),
        off,
    )
    val = np.where(is_sed & (pos == 1), 3.0, val)
    t = day0[own] + _hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "gcs_total", val[ok], _Rows.unit("points"), "nursing")
    sed_start_s = day0[sp] + _hours(s_start)
    sed_stop_s = day0[sp] + _hours(s_stop)

    # ---- blood gases: PaO2 with FiO2 charted 5-55 min before ---------------------------------
    has_gas = ob[:, _RESP]
    k_gas = np.where(has_gas, rng.choice([1, 2, 3], npd, p=[0.4, 0.4, 0.2]) if dense else 1, 0)
    own, pos, off = _slot_times(rng, k_gas, 1.5, 23.5)
    resp = sc[own, _RESP]
    worst = rng.integers(0, np.maximum(k_gas, 1))[own] == pos
    pf = _band(rng, resp, _PF_BANDS)
    pf = np.where(worst, pf, np.minimum(pf * rng.uniform(1.0, 1.35, own.size), 560.0))
    grid = np.asarray(_FIO2_GRID)
    lo_i = np.where(pf < 150, 8, np.where(pf < 250, 4, 0))
    hi_i = np.where(pf < 150, 12, np.where(pf < 250, 8, 6))
    fio2 = grid[rng.integers(lo_i, hi_i)]
    pao2 = np.round(pf * fio2, 1)
    t_gas = day0[own] + _hours(off)
    t_fio2 = t_gas - _hours(rng.uniform(5, 55, own.size) / 60.0)
    ok = keep_alive(own, t_gas)
    p = pd_pat[own]
    is_kpa = kpa[p]
    pao2_val = np.where(is_kpa, np.round(pao2 / _KPA_TO_MMHG, 2), pao2)
    pao2_unit = np.where(is_kpa, _Rows.unit("kPa"), _Rows.unit("mmHg"))
    rows.add(p[ok], t_gas[ok], "pao2", pao2_val[ok], pao2_unit[ok], "blood_gas")
    is_pct = fio2_pct[p]
    fio2_val = np.where(is_pct, np.rint(fio2 * 100), fio2)
    fio2_unit = np.where(is_pct, _Rows.unit("%"), _Rows.unit("fraction"))
    rows.add(p[ok], t_fio2[ok], "fio2", fio2_val[ok], fio2_unit[ok], "ventilator")

    # ---- labs: platelets, bilirubin, creatinine drawn together 1-2x per day -----------------
    k_lab = rng.integers(1, 3, npd) if dense else np.ones(npd, np.int64)
    own, pos, off = _slot_times(rng, k_lab, 1.0, 22.0)
    p = pd_pat[own]
    t = day0[own] + _hours(off)
    alive = keep_alive(own, t)
    # platelets (min is worst)
    w_idx = rng.integers(0, k_lab)
    worst = w_idx[own] == pos
    plt = np.rint(_band(rng, sc[own, _COAG], _PLT_BANDS))
    plt = np.where(worst, plt, np.ceil(plt * rng.uniform(1.0, 1.2, own.size)))
    ok = alive & ob[own, _COAG]
    plt_unit = np.where(plt_1e9[p], _Rows.unit("10^9/L"), _Rows.unit("10^3/uL"))
    rows.add(p[ok], t[ok], "platelets", plt[ok], plt_unit[ok], "lab")
    # bilirubin (max is worst)
    worst = rng.integers(0, k_lab)[own] == pos
    bili = _band(rng, sc[own, _LIVER], _BILI_BANDS)
    bili = np.where(worst, bili, bili * rng.uniform(0.8, 1.0, own.size))
    si = si_chem[p]
    bili_val = np.where(si, np.rint(bili * _BILI_UMOL_PER_MG), np.round(bili, 2))
    bili_unit = np.where(si, _Rows.unit("umol/L"), _Rows.unit("mg/dL"))
    ok = alive & ob[own, _LIVER]
    rows.add(p[ok], t[ok], "bilirubin", bili_val[ok], bili_unit[ok], "lab")
    # creatinine and urine output (renal = max of both; urine drives some 3-4 days)
    renal_pd = sc[:, _RENAL]
    uo_driven = (renal_pd >= 3) & (rng.random(npd) < 0.3)
    crea_score_pd = np.where(uo_driven, rng.integers(0, 3, npd), renal_pd)
    uo_total = np.where(
        uo_driven,
        np.where(renal_pd == 4, rng.uniform(40, 160, npd), rng.uniform(235, 400, npd)),
        np.where(
            renal_pd == 4,
            rng.uniform(100, 1500, npd),
            np.where(renal_pd == 3, rng.uniform(650, 2200, npd), rng.uniform(800, 3200, npd)),
        ),
    )
    worst = rng.integers(0, k_lab)[own] == pos
    crea = _band(rng, crea_score_pd[own], _CREA_BANDS)
    crea = np.where(worst, crea, crea * rng.uniform(0.85, 1.0, own.size))
    crea_val = np.where(si, np.rint(crea * _CREA_UMOL_PER_MG), np.round(crea, 2))
    crea_unit = np.where(si, _Rows.unit("umol/L"), _Rows.unit("mg/dL"))
    rows.add(p[alive], t[alive], "creatinine", crea_val[alive], crea_unit[alive], "lab")
    # lactate (not scored), first lab draw of the day
    if dense:
        first = alive & (pos == 0)
        lac = np.round(np.exp(rng.normal(0.6, 0.45, own.size)) * (1 + 0.25 * sc[own, _CARD]), 1)
        lac_mg = np.isin(country[p], ("Italy",))
        lac_val = np.where(lac_mg, np.round(lac * 9.01, 1), lac)
        lac_unit = np.where(lac_mg, _Rows.unit("mg/dL"), _Rows.unit("mmol/L"))
        rows.add(p[first], t[first], "lactate", lac_val[first], lac_unit[first], "lab")

    # urine output: every 4 h (dense) or 8 h (sparse), volumes sum to the day's total
    k_uo = np.full(npd, 6 if dense else 3, np.int64)
    own, pos, _ = _slot_times(rng, k_uo, 0.0, 24.0)
    step = 24.0 / k_uo[own]
    off = (pos + 1) * step - rng.uniform(0.1, 0.5, own.size)
    share = rng.gamma(8.0, 1.0, own.size)
    tot_share = np.bincount(own, weights=share, minlength=npd)
    vol = np.rint(uo_total[own] * share / tot_share[own])
    t = day0[own] + _hours(off)
    ok = keep_alive(own, t)
    rows.add(pd_pat[own][ok], t[ok], "urine_output", vol[ok], _Rows.unit("mL"), "nursing")

    # weight on day 1
    d1 = np.flatnonzero(pd_day == 1)
    t = day0[d1] + _hours(rng.uniform(0.2, 0.9, d1.size))
    ok = keep_alive(d1, t)
    rows.add(pd_pat[d1][ok], t[ok], "weight", weight[pd_pat[d1]][ok], _Rows.unit("kg"), "nursing")

    observations = _observations_frame(rows, pid)

    infusions = _infusions(rng, pid, pd_pat, day0, cutoff, sc[:, _CARD], weight, mcg_min)
    episodes = _episodes(
        rng,
        c,
        pid,
        anchor,
        death_s,
        last,
        sp_pat=pd_pat[sp],
        sed_start=sed_start_s,
        sed_stop=sed_stop_s,
        n_days=n_days,
    )
    patients, randomisation = _patients(rng, flow, c, weight, death_s)
    biomarkers = _biomarkers(rng, c, pid, anchor, death_s, null=null)
    doses = _doses(rng, pid, anchor, death_s)
    adverse_events = _adverse_events(rng, c, pid, anchor, death_s, null=null)
    disposition = _disposition(rng, flow, c, biomarkers)
    truth, latent_daily = _truth(c, pid, n_days=n_days, biomarkers=biomarkers)
    return {
        "sites": flow["sites"],
        "patients": patients,
        "randomisation": randomisation,
        "observations": observations,
        "infusions": infusions,
        "episodes": episodes,
        "biomarkers": biomarkers,
        "doses": doses,
        "adverse_events": adverse_events,
        "disposition": disposition,
        "truth": truth,
        "latent_daily": latent_daily,
    }


def _observations_frame(rows: _Rows, pid: np.ndarray) -> pd.DataFrame:
    cols = [np.concatenate([part[i] for part in rows.parts]) for i in range(6)]
    rows.parts.clear()  # free the per-variable pieces before the frame is built
    pat, time_s, var, value, unit, source = cols
    # one int64 sort key (patient, time, variable): faster than a 3-key lexsort
    rel = time_s - (time_s.min() if time_s.size else 0)
    if rel.size and int(rel.max()) >= 2**31:
        order = np.lexsort((var, time_s, pat))
    else:
        order = np.argsort((pat << 35) | (rel << 4) | var, kind="stable")
    variables = np.array(_Rows.VARIABLES, dtype=object)
    units = np.array(_Rows.UNITS, dtype=object)
    sources = np.array(_Rows.SOURCES, dtype=object)
    return pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": _to_datetime(time_s[order]),
            "variable": variables[var[order]],
            "value": value[order],
            "unit": units[unit[order]],
            "source": sources[source[order]],
        },
        copy=False,  # fresh arrays: no consolidation copy (matters at 100,000 patients)
    )


def _infusions(rng, pid, pd_pat, day0, cutoff, card, weight, mcg_min) -> pd.DataFrame:
    """Vasopressor / inotrope infusions per day, each inside its study day (>= 60 min runs)."""
    npd = pd_pat.size
    drugs = ("norepinephrine", "epinephrine", "dopamine", "dobutamine")
    u = rng.random(npd)
    # drug by score: 4 NE / epi / dopa>15; 3 NE / epi / dopa 5-15; 2 dobutamine / dopa<=5
    drug = np.where(
        card == 4,
        np.where(u < 0.7, 0, np.where(u < 0.85, 1, 2)),
        np.where(
            card == 3, np.where(u < 0.75, 0, np.where(u < 0.85, 1, 2)), np.where(u < 0.6, 3, 2)
        ),
    )
    rate = np.select(
        [
            (card == 4) & (drug <= 1),
            (card == 4) & (drug == 2),
            (card == 3) & (drug <= 1),
            (card == 3) & (drug == 2),
            (card == 2) & (drug == 3),
            (card == 2) & (drug == 2),
        ],
        [
            rng.uniform(0.13, 0.6, npd),
            rng.uniform(16.0, 19.5, npd),
            rng.uniform(0.02, 0.09, npd),
            rng.uniform(5.5, 14.5, npd),
            rng.uniform(2.5, 10.0, npd),
            rng.uniform(1.0, 4.5, npd),
        ],
        default=np.nan,
    )
    on = card >= 2
    t0 = rng.uniform(0.5, 4.0, npd)
    dur = np.minimum(rng.uniform(3.0, 19.5, npd), 23.5 - t0)
    split = on & (rng.random(npd) < 0.35)
    cut = t0 + 1.25 + rng.random(npd) * np.maximum(dur - 2.5, 0.0)
    low = np.where(
        drug <= 1, np.where(card == 4, rng.uniform(0.03, 0.09, npd), rate * 0.6), rate * 0.6
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
    # short runs (< 60 min) that must not count: norepinephrine on days scored 0-1
    short = np.flatnonzero((card <= 1) & (rng.random(npd) < 0.08))
    s_start = rng.uniform(1.0, 22.0, short.size)
    seg_pd.append(short)
    seg_start.append(s_start)
    seg_stop.append(s_start + rng.uniform(15.0, 45.0, short.size) / 60.0)
    seg_rate.append(rng.uniform(0.12, 0.35, short.size))
    seg_drug.append(np.zeros(short.size, np.int64))
    spd = np.concatenate(seg_pd)
    st = day0[spd] + _hours(np.concatenate(seg_start))
    sp = np.minimum(day0[spd] + _hours(np.concatenate(seg_stop)), cutoff[spd] - 60)
    r = np.concatenate(seg_rate)
    dg = np.concatenate(seg_drug)
    ok = sp - st >= 60
    spd, st, sp, r, dg = spd[ok], st[ok], sp[ok], r[ok], dg[ok]
    p = pd_pat[spd]
    per_min = mcg_min[p]
    rate_val = np.where(per_min, np.round(r * weight[p], 1), np.round(r, 3))
    unit = np.where(per_min, "mcg/min", "mcg/kg/min").astype(object)
    order = np.lexsort((dg, st, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "drug": np.array(drugs, dtype=object)[dg[order]],
            "start": _to_datetime(st[order]),
            "stop": _to_datetime(sp[order]),
            "rate": rate_val[order],
            "unit": unit[order],
        },
        copy=False,
    )


def _episodes(rng, c, pid, anchor, death_s, last, *, sp_pat, sed_start, sed_stop, n_days):
    """Ventilation / oxygen / RRT / sedation episodes consistent with the latent scores."""
    m = c["m"]
    lat = c["latent"][:, :, :n_days]
    obs = c["observed"][:, :, :n_days]
    days = np.arange(1, n_days + 1)
    charted = days[None, :] <= last[:, None]
    hi = (lat[:, _RESP, :] >= 3) & obs[:, _RESP, :] & charted
    any_hi = hi.any(axis=1)
    first_hi = np.where(any_hi, hi.argmax(axis=1) + 1, 0)
    last_hi = np.where(any_hi, n_days - hi[:, ::-1].argmax(axis=1), 0)
    mv = c["mv"]
    has_any = last >= 1
    extub = rng.integers(1, 6, m)
    v_on = has_any & (mv | any_hi)
    v_start = np.where(mv, 1, first_hi)
    v_end = np.minimum(np.maximum(last_hi, np.where(mv, extub, 0)), last)
    e_start = np.where(
        mv,
        anchor - _hours(rng.uniform(2.0, 30.0, m)),
        anchor + (v_start - 1) * _DAY_S + _hours(rng.uniform(0.1, 0.4, m)),
    )
    e_stop = np.where(
        v_end == last,
        anchor + (v_end - 1) * _DAY_S + _hours(rng.uniform(23.5, 23.8, m)),
        anchor + (v_end - 1) * _DAY_S + _hours(rng.uniform(24.5, 30.0, m)),
    )
    e_stop = np.minimum(e_stop, death_s)
    kind_u = rng.random(m)
    kind = np.where(
        mv | (kind_u < 0.45),
        "invasive_ventilation",
        np.where(kind_u < 0.9, "noninvasive_ventilation", "cpap"),
    ).astype(object)
    vi = np.flatnonzero(v_on & (e_stop > e_start))
    parts = [(vi, kind[vi], e_start[vi], e_stop[vi])]
    # oxygen (not support) for patients not ventilated at baseline
    ox = np.flatnonzero(~mv & has_any)
    ox_start = anchor[ox] - _hours(rng.uniform(1.0, 10.0, ox.size))
    ox_last = np.minimum(rng.integers(2, 7, ox.size), last[ox])
    ox_stop = anchor[ox] + (ox_last - 1) * _DAY_S + _hours(12.0)
    ox_stop = np.where(v_on[ox], np.minimum(ox_stop, e_start[ox] - 360), ox_stop)
    ox_stop = np.minimum(ox_stop, death_s[ox])
    ok = ox_stop > ox_start
    parts.append((ox[ok], np.full(int(ok.sum()), "oxygen", object), ox_start[ok], ox_stop[ok]))
    # RRT (continuous haemofiltration) while renal >= 3 from day 1
    ren_hi = (lat[:, _RENAL, :] >= 3) & charted
    run = np.cumprod(ren_hi, axis=1).sum(axis=1)  # consecutive days from day 1
    rr = np.flatnonzero((run >= 1) & (rng.random(m) < 0.6))
    rr_start = anchor[rr] - _hours(rng.uniform(1.0, 12.0, rr.size))
    rr_stop = anchor[rr] + (run[rr] - 1) * _DAY_S + _hours(rng.uniform(12.0, 23.0, rr.size))
    rr_stop = np.minimum(rr_stop, death_s[rr])
    parts.append((rr, np.full(rr.size, "rrt", object), rr_start, rr_stop))
    # sedation interruptions with a GCS charted inside (scored by the pre-sedation GCS)
    parts.append((sp_pat, np.full(sp_pat.size, "sedation", object), sed_start, sed_stop))
    p = np.concatenate([x[0] for x in parts])
    k = np.concatenate([x[1] for x in parts])
    s = np.concatenate([x[2] for x in parts])
    e = np.concatenate([x[3] for x in parts])
    kinds = ("cpap", "invasive_ventilation", "noninvasive_ventilation", "oxygen", "rrt", "sedation")
    kc = np.searchsorted(np.array(kinds, dtype=object), k)
    order = np.lexsort((kc, s, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "kind": k[order],
            "start": _to_datetime(s[order]),
            "stop": _to_datetime(e[order]),
        }
    )


def _patients(rng, flow, c, weight, death_s) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = c["m"]
    keep = c["index"]
    sev = c["sev"]
    apache = np.clip(np.rint(20.5 + 4.5 * sev + rng.normal(0, 4.5, m)), 5, 50).astype(np.int64)
    charlson = np.clip(np.rint(rng.normal(4.6, 2.2, m) + 0.04 * (c["age"] - 70)), 0, 14)
    labels = np.array([x[0] for x in _INFECTIONS], dtype=object)
    infection = labels[_cat(rng.random(m), tuple(x[1] for x in _INFECTIONS))]
    alive = death_s == np.iinfo(np.int64).max
    death_col = np.where(
        alive, np.datetime64("NaT", "ns"), _to_datetime(np.where(alive, 0, death_s))
    )
    patients = pd.DataFrame(
        {
            "patient_id": flow["patient_id"][keep],
            "site_id": flow["site_ids"][flow["site"][keep]],
            "anchor_time": _to_datetime(c["anchor_s"]),
            "weight_kg": weight,
            "death_time": death_col,
            "age_years": c["age"],
            "sex": np.where(c["female"], "F", "M").astype(object),
            "apache_ii": apache,
            "charlson": charlson.astype(np.int64),
            "infection_type": infection,
            "mechanical_ventilation": c["mv"],
            "randomised_at": _to_datetime(c["randomised_s"]),
            "synthetic": np.ones(m, bool),
        }
    )
    arm_names = np.array([Arm.PRECISION.value, Arm.PLACEBO.value], dtype=object)
    order = np.argsort(flow["patient_id"].astype(str), kind="stable")
    randomisation = pd.DataFrame(
        {
            "patient_id": flow["patient_id"][order],
            "arm": arm_names[flow["arm"][order]],
            "randomised_at": _to_datetime(flow["randomised_s"][order]),
        }
    )
    return patients, randomisation


def _biomarkers(rng, c, pid, anchor, death_s, *, null: bool) -> pd.DataFrame:
    """Baseline ferritin / HLA-DR for all; days 3, 5, 7, 15, 28 for the sampling subset."""
    m = c["m"]
    mals = c["mals"]
    arm = c["arm"]
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
    t0 = c["randomised_s"] - _hours(rng.uniform(3.0, 30.0, m))

    # sampling subset (alive for the day-3 draw) and designed reversal, exact counts per arm
    alive3 = c["death_day"] >= 4
    subset = np.zeros(m, bool)
    reverse = np.zeros(m, bool)
    for a in (0, 1):
        in_arm = arm == a
        n_a = int(in_arm.sum())
        sub = _choose(rng, in_arm & alive3, _scaled("subset", a, n_a, null=null), np.zeros(m))
        subset |= sub
        reverse |= _choose(rng, sub, _scaled("reversal", a, int(sub.sum()), null=null), np.zeros(m))
    sample_days = np.array([3, 5, 7, 15, 28])
    s_idx = np.flatnonzero(subset)
    t_s = (
        anchor[s_idx, None]
        + (sample_days[None, :] - 1) * _DAY_S
        + _hours(rng.uniform(6, 14, (s_idx.size, 5)))
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
    c["subset"] = subset
    c["reversal"] = reverse
    return pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": _to_datetime(time_s[order]),
            "ferritin_ng_ml": ferr[order],
            "hla_dr_ab_per_cell": hla[order],
        }
    )


def _doses(rng, pid, anchor, death_s) -> pd.DataFrame:
    """Double dummy: IV every 8 h and SC every 48 h for up to 15 days (blinded label)."""
    m = pid.size
    stop = np.minimum(anchor + 15 * _DAY_S, death_s)
    early = rng.random(m) < 0.1
    stop = np.where(early, np.minimum(stop, anchor + rng.integers(3, 15, m) * _DAY_S), stop)
    iv_k = np.arange(45)
    sc_k = np.arange(8)
    iv = (
        anchor[:, None]
        + iv_k[None, :] * 8 * _HOUR_S
        + np.where(iv_k[None, :] == 0, 0, _hours(rng.uniform(-0.3, 0.3, (m, 45))))
    )
    sc = anchor[:, None] + sc_k[None, :] * 48 * _HOUR_S + _hours(rng.uniform(0.05, 0.5, (m, 8)))
    ip, ij = np.nonzero(iv < stop[:, None])
    sp_, sj = np.nonzero(sc < stop[:, None])
    pat = np.concatenate([ip, sp_])
    t = np.concatenate([iv[ip, ij], sc[sp_, sj]])
    route = np.concatenate([np.zeros(ip.size, np.int64), np.ones(sp_.size, np.int64)])
    order = np.lexsort((route, t, pat))
    return pd.DataFrame(
        {
            "patient_id": pid[pat[order]],
            "time": _to_datetime(t[order]),
            "route": np.array(["IV", "SC"], dtype=object)[route[order]],
            "label": np.full(order.size, "study drug", dtype=object),
        },
        copy=False,
    )


def _term_probs(terms, factors) -> np.ndarray:
    w = np.array([t[2] * factors.get(t[1], 1.0) for t in terms])
    return w / w.sum()


def _adverse_events(rng, c, pid, anchor, death_s, *, null: bool) -> pd.DataFrame:
    m = c["m"]
    arm = c["arm"]
    mals = c["mals"]
    # stratum: 0 anakinra, 1 rhIFN-gamma, 2 placebo MALS, 3 placebo SIP
    stratum = np.where(arm == 0, np.where(mals, 0, 1), np.where(mals, 2, 3))
    has_sae = np.zeros(m, bool)
    for a in (0, 1):
        for is_m, key in ((True, "sae_mals"), (False, "sae_sip")):
            grp = (arm == a) & (mals == is_m)
            has_sae |= _choose(rng, grp, _scaled(key, a, int(grp.sum()), null=null), np.zeros(m))
    n_events = _r(m * _SAE_EVENTS[0] / _SAE_EVENTS[1])
    k_sae = has_sae.astype(np.int64)
    extra = max(n_events - int(k_sae.sum()), 0)
    if has_sae.any():
        k_sae[has_sae] += rng.multinomial(extra, np.full(int(has_sae.sum()), 1 / has_sae.sum()))
    k_ns = rng.poisson(1.3, m)
    no_factor: MappingProxyType = MappingProxyType({})
    fac = (_ANAKINRA_FACTORS, _IFN_FACTORS, no_factor, no_factor) if not null else (no_factor,) * 4
    out = []
    for serious, terms, counts in ((True, _SAE_TERMS, k_sae), (False, _NONSERIOUS_TERMS, k_ns)):
        own, _ = _expand(counts)
        term = np.zeros(own.size, np.int64)
        u = rng.random(own.size)
        for s in range(4):
            sel = stratum[own] == s
            cum = np.cumsum(_term_probs(terms, fac[s]))[:-1]
            term[sel] = np.searchsorted(cum, u[sel], side="right")
        window = np.minimum(death_s[own], anchor[own] + 90 * _DAY_S) - anchor[own] - _HOUR_S
        onset = (
            anchor[own] + _HOUR_S // 2 + (rng.beta(1.0, 2.5, own.size) * window).astype(np.int64)
        )
        severe = rng.random(own.size) < (0.4 if serious else 0.15)
        p_rel = np.where((arm[own] == 0) & (not null), 0.03, 0.012)
        related = rng.random(own.size) < p_rel
        out.append((own, term, onset, np.full(own.size, serious), severe, related, terms))
    pats, socs, pts, onsets, sers, sevs, rels, aesis = [], [], [], [], [], [], [], []
    for own, term, onset, ser, sev, rel, terms in out:
        soc = np.array([t[0] for t in terms], dtype=object)
        pt = np.array([t[1] for t in terms], dtype=object)
        ae = np.array([t[3] for t in terms], dtype=object)
        pats.append(own)
        socs.append(soc[term])
        pts.append(pt[term])
        onsets.append(onset)
        sers.append(ser)
        sevs.append(sev)
        rels.append(rel)
        aesis.append(ae[term])
    p = np.concatenate(pats)
    onset = np.concatenate(onsets)
    pt = np.concatenate(pts)
    pt_code = np.unique(pt.astype(str), return_inverse=True)[1]
    order = np.lexsort((pt_code, onset, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "onset_time": _to_datetime(onset[order]),
            "soc": np.concatenate(socs)[order],
            "pt": pt[order],
            "serious": np.concatenate(sers)[order],
            "severe": np.concatenate(sevs)[order],
            "related": np.concatenate(rels)[order],
            "aesi": np.concatenate(aesis)[order],
        }
    )


def _disposition(rng, flow, c, biomarkers) -> pd.DataFrame:
    n = flow["n"]
    n_screened = _r(n * N_SCREENED_PUBLISHED / N_RANDOMISED_PUBLISHED)
    n_excl = n_screened - n
    counts = _apportion(n_excl, np.array([x[1] for x in SCREENING_EXCLUSIONS]))
    reason_idx = np.repeat(np.arange(len(counts)), counts)
    labels = np.array([x[0] for x in SCREENING_EXCLUSIONS], dtype=object)
    fixed = np.array(_EXCLUSION_PHENOTYPE, dtype=object)[reason_idx]
    drawn = np.where(rng.random(n_excl) < 0.2, Phenotype.MALS.value, Phenotype.SIP.value)
    ex_pheno = np.where(pd.isna(fixed), drawn, fixed).astype(object)
    ex_site = rng.choice(
        flow["site_ids"].size, n_excl, p=flow["site_weights"] / flow["site_weights"].sum()
    )
    ex_time = flow["start_s"] + _hours(rng.random(n_excl) * _ENROLMENT_DAYS * 24)
    # randomised: screened a few hours before randomisation
    r_time = flow["randomised_s"] - _hours(rng.uniform(3.0, 30.0, n))
    r_pheno = np.where(flow["is_mals"], Phenotype.MALS.value, Phenotype.SIP.value).astype(object)
    # analysed patients: the screening time of their baseline sample
    first = biomarkers.drop_duplicates("patient_id")
    t_map = pd.Series(
        first["time"].to_numpy().astype("datetime64[s]").astype(np.int64), index=first["patient_id"]
    )
    known = pd.Series(flow["patient_id"]).map(t_map)
    r_time = np.where(known.notna(), known.fillna(0).to_numpy(np.int64), r_time)
    time_s = np.concatenate([r_time, ex_time])
    pid = np.concatenate([flow["patient_id"], np.full(n_excl, None, object)])
    site = np.concatenate([flow["site_ids"][flow["site"]], flow["site_ids"][ex_site]])
    reason = np.concatenate([np.full(n, None, object), labels[reason_idx]])
    pheno = np.concatenate([r_pheno, ex_pheno])
    wd = np.concatenate([flow["withdrawn"], np.zeros(n_excl, bool)])
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


def _truth(c, pid, *, n_days: int, biomarkers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = c["m"]
    eff = c["effective"][:, :, :n_days]
    dd = c["death_day"]
    last = np.minimum(c["last_day"], n_days)
    # charted days before the death day
    alive_last = np.where(np.isfinite(dd) & (dd <= last), dd - 1, last).astype(np.int64)
    alive_last = np.maximum(alive_last, 0)
    own, pos = _expand(alive_last)
    day = pos + 1
    comp = eff[own, :, pos]
    cols = {"patient_id": pid[own], "study_day": day.astype(np.int64)}
    for i, organ in enumerate(ORGANS):
        cols[f"sofa_{organ.value}"] = comp[:, i].astype(np.int64)
    cols["sofa_total"] = comp.sum(axis=1).astype(np.int64)
    latent_daily = pd.DataFrame(cols)
    truth = pd.DataFrame(
        {
            "patient_id": pid,
            "arm": np.array([Arm.PRECISION.value, Arm.PLACEBO.value], dtype=object)[c["arm"]],
            "phenotype": np.where(c["mals"], Phenotype.MALS.value, Phenotype.SIP.value).astype(
                object
            ),
            "baseline_sofa": c["s1"].astype(np.int64),
            "designed_responder": c["responder"],
            "latent_sofa_decrease": c["delta"],
            "death_study_day": pd.array(np.where(np.isfinite(dd), dd, np.nan), dtype="Int64")
            if m
            else pd.array([], dtype="Int64"),
            "last_icu_day": np.minimum(c["last_icu"], n_days),
            "in_sampling_subset": c["subset"],
            "designed_reversal": c["reversal"],
        }
    )
    return truth, latent_daily
