"""What of the allocation a role may see, decided on the server (features.md section 6).

``arm_labels`` is the ONLY place that turns stored arm values into display labels. Blinded
roles get ``None``: callers must then not load the arm at all. The DSMB closed session sees
coded groups; which arm is "Group A" is derived from the deployment's secret key (stable
across workers and restarts, not derivable from order or colour: both groups use neutral
colours and are always listed A before B).
"""

from __future__ import annotations

import hashlib
import hmac
from types import MappingProxyType
from typing import Final

from components.auth import ArmVisibility
from core.vocab import ARM_LABELS, Arm

GROUP_A: Final = "Group A"
GROUP_B: Final = "Group B"

#: indirect-unblinding guards for blinded roles, as data (features.md 6.4 / 8.5)
GUARDS: Final = MappingProxyType(
    {
        "post_baseline_biomarkers": "Post-baseline ferritin and HLA-DR can reveal the allocation "
        "(the active drugs move them).",
        "aesi_by_arm": "Anemia and hemorrhage are drug-specific adverse events of special interest.",
        "per_arm_panels": "Per-arm results are shown only to unblinded roles and the DSMB.",
    }
)


def precision_is_group_a(secret_key: str) -> bool:
    digest = hmac.new(secret_key.encode(), b"immunosep-group-code", hashlib.sha256).digest()
    return bool(digest[0] & 1)


def arm_labels(visibility: ArmVisibility, secret_key: str) -> dict[str, str] | None:
    """Stored arm value -> label for this visibility (None: the arm may not be used)."""
    if visibility is ArmVisibility.FULL:
        return {a.value: ARM_LABELS[a] for a in Arm}
    if visibility is ArmVisibility.CODED:
        a_is_precision = precision_is_group_a(secret_key)
        return {
            Arm.PRECISION.value: GROUP_A if a_is_precision else GROUP_B,
            Arm.PLACEBO.value: GROUP_B if a_is_precision else GROUP_A,
        }
    return None


def treated_control_labels(labels: dict[str, str]) -> tuple[str, str]:
    """(treated, control) display labels for statistics that need the direction."""
    return labels[Arm.PRECISION.value], labels[Arm.PLACEBO.value]
