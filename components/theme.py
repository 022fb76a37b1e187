"""Colours and labels used on every page (colour-blind safe: Okabe-Ito / Tol palettes)."""

from types import MappingProxyType
from typing import Final

from core.vocab import Organ, Phenotype

#: one colour per organ everywhere (Paul Tol 'bright' + 'muted', distinguishable in deuteranopia)
ORGAN_COLOURS: Final = MappingProxyType(
    {
        Organ.RESPIRATION: "#4477AA",
        Organ.COAGULATION: "#EE6677",
        Organ.LIVER: "#CCBB44",
        Organ.CARDIOVASCULAR: "#AA3377",
        Organ.CNS: "#66CCEE",
        Organ.RENAL: "#228833",
    }
)
ORGAN_LABELS: Final = MappingProxyType(
    {
        Organ.RESPIRATION: "Respiration",
        Organ.COAGULATION: "Coagulation",
        Organ.LIVER: "Liver",
        Organ.CARDIOVASCULAR: "Cardiovascular",
        Organ.CNS: "CNS",
        Organ.RENAL: "Renal",
    }
)
#: MALS red and "pending HLA-DR" stay apart under deuteranopia, protanopia and tritanopia
#: (CIELAB distance >= 40 after the Machado 2009 simulation; the former orange #EE7733 was 16
#: from MALS red under deuteranopia): Okabe-Ito yellow for pending, drawn with a dark outline.
#: tests/app/test_a11y.py checks every pair; docs/accessibility.md
PHENOTYPE_COLOURS: Final = MappingProxyType(
    {
        Phenotype.MALS: "#CC3311",
        Phenotype.SIP: "#0077BB",
        Phenotype.NOT_ELIGIBLE: "#777777",
        Phenotype.PENDING: "#F0E442",
        Phenotype.UNKNOWN: "#BBBBBB",
    }
)
#: text colour on a phenotype-coloured badge (contrast >= 4.5:1)
PHENOTYPE_TEXT_COLOURS: Final = MappingProxyType(
    {
        Phenotype.MALS: "#FFFFFF",
        Phenotype.SIP: "#FFFFFF",
        Phenotype.NOT_ELIGIBLE: "#000000",
        Phenotype.PENDING: "#000000",
        Phenotype.UNKNOWN: "#000000",
    }
)
PHENOTYPE_LABELS: Final = MappingProxyType(
    {
        Phenotype.MALS: "MALS",
        Phenotype.SIP: "SIP",
        Phenotype.NOT_ELIGIBLE: "Not eligible",
        Phenotype.PENDING: "Pending HLA-DR",
        Phenotype.UNKNOWN: "Unknown",
    }
)
#: arm / group colours: used ONLY for roles allowed to see groups (Okabe-Ito orange / blue)
GROUP_COLOURS: Final = ("#E69F00", "#0072B2")
POOLED_COLOUR: Final = "#555555"
TOTAL_LINE_COLOUR: Final = "#222222"
FONT_FAMILY: Final = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
)
