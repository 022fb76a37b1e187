"""THE allocation policy: what each role may see of the randomised arm (docs/blinding.md).

Every decision about the arm is made here, on the server, and applied by the data layer:

- :func:`groups_for`: the comparison groups a visibility allows (none / coded / real labels);
- :func:`load_groups`: ``patient_id, group`` for roles that may see a group, the ONLY code
  path that reads the randomisation table for the web app; it refuses blinded roles;
- the guards (:func:`may_see_post_baseline_biomarkers`, :func:`may_list_aesi_patients`,
  :func:`may_compare_groups`, :data:`GUARDS`, :data:`MIN_CELL_SIZE`, :func:`cell_shown`,
  :func:`partition_shown`, :func:`guards_follow_filters`, :func:`may_see_publication_check`)
  live in :mod:`core.policy` (the exit policy, docs/blinding.md 6.5) and are re-exported here;
- the DSMB's group coding: which arm is "Group A" is a per-trial key stored with the data
  (``core.db.trial_keys``, name :data:`GROUP_CODING_KEY`), written once, so rotating the
  deployment's session key never swaps the codes in the middle of a trial. A database that
  has no coding yet gets the one earlier versions derived from the deployment's secret key
  (:func:`legacy_precision_is_group_a`), so a deployment that upgrades keeps its codes.

Blinded roles (``ArmVisibility.NONE``) never get the arm; the DSMB closed session
(``CODED``) gets "Group A" / "Group B" in neutral colours, always listed A before B, with
every difference "Group A − Group B" whatever arm is behind the code; unblinded roles
(``FULL``) get the real labels and precision − placebo.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import pandas as pd

from components.server.auth import ArmVisibility
from components.server.cache import cache
from components.server.context import engine, settings
from core.policy import (  # noqa: F401  (the guards are part of this module's interface)
    GUARDS,
    HIDDEN,
    MIN_CELL_SIZE,
    SUPPRESSED,
    cell_shown,
    guards_follow_filters,
    may_compare_groups,
    may_list_aesi_patients,
    may_see_post_baseline_biomarkers,
    may_see_publication_check,
    partition_shown,
)
from core.repository import ensure_trial_key, load_arms
from core.vocab import ARM_LABELS, Arm

GROUP_A: Final = "Group A"
GROUP_B: Final = "Group B"
POOLED_LABEL: Final = "All patients"
#: the stored per-trial key naming the arm shown as "Group A" to the DSMB closed session
GROUP_CODING_KEY: Final = "group_a_arm"

#: what the page and the report say about the view (never a group name)
BLINDING_WORDS: Final = MappingProxyType(
    {
        ArmVisibility.NONE: "Blinded: pooled and by immune state only",
        ArmVisibility.CODED: "Closed session: coded groups (Group A / Group B)",
        ArmVisibility.FULL: "Unblinded: treatment allocation shown",
    }
)


@dataclass(frozen=True)
class Groups:
    """The comparison groups a visibility allows, in display order."""

    visibility: ArmVisibility
    labels: tuple[str, ...] = field(default=())

    @property
    def compared(self) -> bool:
        return self.visibility is not ArmVisibility.NONE

    @property
    def treated(self) -> str:
        return self.labels[0]

    @property
    def control(self) -> str:
        return self.labels[1]

    @property
    def difference_words(self) -> str:
        if self.visibility is ArmVisibility.FULL:
            return "precision immunotherapy − placebo"
        if self.visibility is ArmVisibility.CODED:
            return f"{GROUP_A} − {GROUP_B}"
        return ""


def groups_for(visibility: ArmVisibility) -> Groups:
    """Display groups: the real arms (treated first), the two codes (A first), or one pool."""
    if visibility is ArmVisibility.FULL:
        return Groups(visibility, (ARM_LABELS[Arm.PRECISION], ARM_LABELS[Arm.PLACEBO]))
    if visibility is ArmVisibility.CODED:
        return Groups(visibility, (GROUP_A, GROUP_B))
    return Groups(visibility, (POOLED_LABEL,))


# --- the group coding -------------------------------------------------------------------------


def legacy_precision_is_group_a(secret_key: str) -> bool:
    """The coding of versions before the stored key: derived from the deployment's secret key.
    Used once, to seed the stored coding of a database that has none."""
    digest = hmac.new(secret_key.encode(), b"immunosep-group-code", hashlib.sha256).digest()
    return bool(digest[0] & 1)


def arm_labels(visibility: ArmVisibility, group_a_arm: str) -> dict[str, str] | None:
    """Stored arm value -> label for this visibility (None: the arm may not be used).

    ``group_a_arm`` is the arm shown as "Group A" (the stored per-trial coding).
    """
    if visibility is ArmVisibility.FULL:
        return {a.value: ARM_LABELS[a] for a in Arm}
    if visibility is ArmVisibility.CODED:
        if group_a_arm not in {a.value for a in Arm}:
            raise ValueError(f"stored group coding names no arm: {group_a_arm!r}")
        return {a.value: GROUP_A if a.value == group_a_arm else GROUP_B for a in Arm}
    return None


def group_a_seed(secret_key: str) -> str:
    """The coding a database without a stored one starts with (the legacy derivation)."""
    return Arm.PRECISION.value if legacy_precision_is_group_a(secret_key) else Arm.PLACEBO.value


def group_a_arm() -> str:
    """The arm coded "Group A" for this trial (stored once with the data, see module doc;
    ``app.bootstrap_data`` stores it at start, so this normally only reads)."""
    return ensure_trial_key(engine(), GROUP_CODING_KEY, group_a_seed(settings().secret_key))


def treated_control_labels(labels: dict[str, str]) -> tuple[str, str]:
    """(treated, control) display labels for statistics that need the direction."""
    return labels[Arm.PRECISION.value], labels[Arm.PLACEBO.value]


def load_groups(version: str, visibility: ArmVisibility) -> pd.DataFrame:
    """``patient_id, group`` labelled for this visibility. Refuses blinded roles: the
    randomisation table is never read on their code paths."""
    if not may_compare_groups(visibility):
        raise PermissionError("the arm table is never loaded for blinded roles")
    return _groups(version, visibility.value)


@cache.memoize()
def _groups(version: str, visibility: str) -> pd.DataFrame:
    vis = ArmVisibility(visibility)
    if not may_compare_groups(vis):
        raise PermissionError("the arm table is never loaded for blinded roles")
    mapping = arm_labels(vis, group_a_arm())
    assert mapping is not None
    arms = load_arms(engine())
    return pd.DataFrame({"patient_id": arms["patient_id"], "group": arms["arm"].map(mapping)})
