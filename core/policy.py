"""The exit policy for the randomised arm: what each visibility may take out of the server.

One home for the rules every exit obeys (pages, callbacks, API, CSV / PNG / report downloads,
CLI and UI exports, tooltips, errors, logs; docs/blinding.md section 6):

- :class:`ArmVisibility`: what a role may see of the allocation (blinded, coded, full);
- :data:`GUARDS`: the indirect-unblinding guards, features of the data that can reveal the
  allocation, with their reasons (docs/blinding.md 6.4 / 8.5);
- :data:`MIN_CELL_SIZE`: a guarded item is shown to a blinded role only pooled over at least
  this many patients (smaller cells are suppressed, with :data:`SUPPRESSED` saying why);
- the ``may_*`` predicates the data layer and the exporters ask.

``core`` code (the CLI exporters) and the web app ask the same functions; the web app's
group coding and the arm table loader are in ``components.blinding``.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ArmVisibility(StrEnum):
    """What a role may see of the allocation."""

    NONE = "blinded"  # never the arm, no per-arm splits
    CODED = "coded"  # Group A / Group B (DSMB closed session)
    FULL = "unblinded"  # real labels


#: indirect-unblinding guards for blinded roles, as data (docs/blinding.md 6.4 / 8.5)
GUARDS: Final = MappingProxyType(
    {
        "post_baseline_biomarkers": "Post-baseline ferritin and HLA-DR can reveal the allocation "
        "(the active drugs move them).",
        "aesi_by_arm": "Anemia and hemorrhage are drug-specific adverse events of special interest.",
        "per_arm_panels": "Per-arm results are shown only to unblinded roles and the DSMB.",
    }
)

#: the smallest number of patients a guarded item may be pooled over for a blinded role
MIN_CELL_SIZE: Final = 10

HIDDEN: Final = "hidden: could reveal allocation"
SUPPRESSED: Final = f"suppressed: fewer than {MIN_CELL_SIZE} patients"


def may_compare_groups(visibility: ArmVisibility) -> bool:
    """Per-group panels, statistics and the ``group`` column (not for blinded roles)."""
    return visibility is not ArmVisibility.NONE


def may_see_post_baseline_biomarkers(visibility: ArmVisibility) -> bool:
    """Ferritin / HLA-DR after the first sample move with the active products."""
    return visibility is not ArmVisibility.NONE


def may_list_aesi_patients(visibility: ArmVisibility) -> bool:
    """Patient listings of anemia / hemorrhage (drug-specific AESIs) can reveal the arm."""
    return visibility is not ArmVisibility.NONE


def cell_shown(visibility: ArmVisibility, n_patients: int) -> bool:
    """May a guarded item pooled over ``n_patients`` be shown to this visibility?"""
    return visibility is not ArmVisibility.NONE or n_patients >= MIN_CELL_SIZE
