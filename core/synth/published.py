"""The published ImmunoSep shape the generator hits (clinical.md 1.8; SRC-AUDIT, SRC-JAMA-ABS).

Counts are ``(events, denominator)`` per arm (precision, placebo) at the published size of 281
randomised patients; :func:`scaled` carries them to another size (rounded half up). Labels of
the screening exclusions, site names and unit conventions per country are synthetic.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from core.synth._base import round_half_up
from core.vocab import Phenotype

__all__ = [
    "COUNTRIES",
    "ENROLMENT_DAYS",
    "EXCLUSION_PHENOTYPE",
    "INFECTIONS",
    "N_RANDOMISED_PUBLISHED",
    "N_SCREENED_PUBLISHED",
    "PUBLISHED_COUNTS",
    "SAE_EVENTS",
    "SCREENING_EXCLUSIONS",
    "UNITS_BY_COUNTRY",
    "scaled",
]

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
EXCLUSION_PHENOTYPE: Final = (
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
PUBLISHED_COUNTS: Final = MappingProxyType(
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
        # day-15 SOFA response per stratum (clinical.md 1.8.3: MALS 12/25 vs 5/23, SIP 40/106
        # vs 29/122; together 52/131 vs 34/145, the Table 2 numerator, clinical.md 1.9 #1)
        "resp15_mals": ((12, 25), (5, 23)),
        "resp15_sip": ((40, 106), (29, 122)),
        "reversal": ((46, 59), (32, 66)),
        "sae_mals": ((20, 25), (21, 23)),
        "sae_sip": ((96, 106), (108, 122)),
        "female": ((42, 131), (51, 145)),
    }
)
SAE_EVENTS: Final = (1069, 276)

#: (country, number of sites, relative patients per site); most patients in Greece [U names]
COUNTRIES: Final = (
    ("Greece", 20, 3.0),
    ("Netherlands", 4, 1.3),
    ("Germany", 3, 1.0),
    ("Switzerland", 2, 0.8),
    ("Romania", 2, 1.1),
    ("Italy", 2, 0.9),
)
#: unit conventions per country (synthetic): SI chemistry, PaO2 in kPa, FiO2 in %,
#: platelets in 10^9/L, vasopressors in mcg/min
UNITS_BY_COUNTRY: Final = MappingProxyType(
    {
        "Greece": (False, False, False, False, False),
        "Netherlands": (True, True, True, True, True),
        "Germany": (False, False, True, False, False),
        "Switzerland": (True, True, True, True, True),
        "Romania": (False, False, False, False, False),
        "Italy": (False, False, True, False, False),
    }
)
#: the spelling a site with the convention above charts a variable in instead of its canonical
#: unit (core.concepts; each is an accepted unit of its concept, tests/test_concept_usage.py);
#: lactate in mg/dL is charted by the Italian sites
ALTERNATIVE_UNITS: Final = MappingProxyType(
    {
        "pao2": "kPa",
        "fio2": "%",
        "platelets": "10^9/L",
        "bilirubin": "umol/L",
        "creatinine": "umol/L",
        "lactate": "mg/dL",
    }
)
ENROLMENT_DAYS: Final = 900.0  # 5 Aug 2021 .. about Jan 2024, so day 90 ends by Apr 2024
INFECTIONS: Final = (
    ("community-acquired pneumonia", 0.37),
    ("hospital-acquired pneumonia", 0.24),
    ("ventilator-associated pneumonia", 0.27),
    ("primary bacteraemia", 0.105),
    ("pneumonia with secondary bacteraemia", 0.015),
)


def scaled(key: str, arm: int, n: float, *, null: bool = False) -> int:
    """Published count ``key`` for ``arm`` (0 precision, 1 placebo) scaled to denominator n.

    ``null=True`` uses the pooled rate of both arms (scenario ``"null"``).
    """
    pairs = PUBLISHED_COUNTS[key]
    if null:
        num = sum(p[0] for p in pairs)
        den = sum(p[1] for p in pairs)
        return round_half_up(n * num / den)
    num, den = pairs[arm]
    return round_half_up(n * num / den)
