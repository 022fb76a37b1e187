"""The review forms: which stored variables a monitor reviews together (docs/review.md).

A *form* groups the values of one SOFA organ system (the endpoint's components, clinical.md
1.5), plus "other labs" (lactate, body weight). The forms are derived from
:mod:`core.concepts` (each observation variable's organ), so a new variable lands in its
organ's form without an edit here.

Deliberately left out: the ``biomarkers`` table (post-baseline ferritin / HLA-DR can reveal
the allocation, :data:`core.policy.GUARDS`), adverse events (drug-specific AESIs), study-drug
doses and the randomisation. The review workspace is shown to blinded monitors; nothing on
its code paths reads those tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from core.concepts import DRUGS, OBSERVATIONS
from core.vocab import ORGANS, Organ

#: the form of the observation variables that score no organ (lactate, weight)
OTHER_LABS: Final = "other_labs"


@dataclass(frozen=True)
class Form:
    """One review form: its id, label, observation variables and (cardiovascular) drugs."""

    form_id: str
    label: str
    variables: tuple[str, ...]
    drugs: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[str, ...]:
        """Every variable name a query on this form may name (observations, then drugs)."""
        return (*self.variables, *self.drugs)


def _build_forms() -> MappingProxyType[str, Form]:
    forms: dict[str, Form] = {}
    for organ in ORGANS:
        variables = tuple(
            c.name for c in OBSERVATIONS if c.organ is organ and c.biomarker_column is None
        )
        drugs = tuple(d.name for d in DRUGS) if organ is Organ.CARDIOVASCULAR else ()
        forms[organ.value] = Form(organ.value, organ.value.capitalize(), variables, drugs)
    forms["cns"] = Form("cns", "CNS", forms["cns"].variables)
    other = tuple(c.name for c in OBSERVATIONS if c.organ is None and c.biomarker_column is None)
    forms[OTHER_LABS] = Form(OTHER_LABS, "Other labs", other)
    return MappingProxyType(forms)


#: form id -> :class:`Form`, in display order (the six organs, then other labs)
FORMS: Final = _build_forms()
#: observation variable or scored drug -> its form id
FORM_OF: Final = MappingProxyType({v: f.form_id for f in FORMS.values() for v in f.items})
#: the organ form of each SOFA organ (same id as the organ)
ORGAN_FORM: Final = MappingProxyType({o: o.value for o in ORGANS})


def form_of(variable: str) -> str:
    """The form of an observation variable or scored drug.

    Raises
    ------
    KeyError
        The variable belongs to no review form (the message lists the reviewable variables).
    """
    try:
        return FORM_OF[variable]
    except KeyError:
        raise KeyError(
            f"variable {variable!r} is on no review form; reviewable: {', '.join(FORM_OF)}"
        ) from None
