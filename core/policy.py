"""The exit policy for the randomised arm: what each visibility may take out of the server.

One home for the rules every exit obeys (pages, callbacks, API, CSV / PNG / report downloads,
CLI and UI exports, tooltips, errors, logs; docs/blinding.md section 6):

- :class:`ArmVisibility`: what a role may see of the allocation (blinded, coded, full);
- :data:`GUARDS`: the indirect-unblinding guards, features of the data that can reveal the
  allocation, with their reasons (docs/blinding.md 6.4 / 8.5);
- :data:`MIN_CELL_SIZE`: a guarded item is shown to a blinded role only pooled over at least
  this many patients (smaller cells are suppressed, with :data:`SUPPRESSED` saying why);
- :func:`guards_follow_filters`: for blinded roles guarded items never follow the free cohort
  filters; they are computed on the role's whole visible cohort (and on pre-specified strata,
  :func:`partition_shown`), so two filter settings can never be differenced into one
  patient's value (docs/blinding.md 6.5);
- the ``may_*`` predicates the data layer and the exporters ask.

The functions read :data:`MIN_CELL_SIZE` when they are called (never a copy taken at import),
so the exit-policy test can build a deliberately leaking app by patching this module.

``core`` code (the CLI exporters) and the web app ask the same functions; the web app's
group coding and the arm table loader are in ``components.blinding``.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def partition_shown(visibility: ArmVisibility, sizes: Iterable[int]) -> bool:
    """May a guarded item be broken down over a partition of its pooled patients (the
    pre-specified strata, e.g. baseline immune state, *every* level including the remainder)?

    Only if every part has at least :data:`MIN_CELL_SIZE` patients: then any sum or
    difference of the shown cells (with the pooled total) covers at least that many patients,
    so no cell can be subtracted down to a smaller group (docs/blinding.md 6.5). An empty
    partition is never shown.
    """
    parts = [int(n) for n in sizes]
    return bool(parts) and all(cell_shown(visibility, n) for n in parts)


def guards_follow_filters(visibility: ArmVisibility) -> bool:
    """Are guarded items computed on the filtered cohort (True) or on the role's whole visible
    cohort, whatever the filters (False)?

    Roles that may compare groups (DSMB, unblinded) see guarded items wherever they look.
    Blinded roles get them on their whole visible cohort only: free filters could otherwise
    narrow a cell to one patient, or two settings differing by one patient could be
    subtracted (the differencing attack; docs/blinding.md 6.5).
    """
    return visibility is not ArmVisibility.NONE


def may_see_publication_check(visibility: ArmVisibility, demo_data: str | None) -> bool:
    """The "reproduces the publication" badge prints arm-level counts and names the arms:
    only for unblinded roles, and only on the synthetic demo trial that replicates the
    publication (never for the DSMB's coded view, which it would decode)."""
    return visibility is ArmVisibility.FULL and demo_data == "synthetic"
