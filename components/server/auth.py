"""Who is asking: the principal of the current request and what their role may see.

The role decides, on the server, whether the randomised arm may be used at all
(docs/blinding.md section 6). Blinded roles never get arm data from the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flask import current_app, g

from core.policy import ArmVisibility

__all__ = ["ArmVisibility", "Principal", "Role"]


class Role(StrEnum):
    CLINICIAN = "clinician"
    MONITOR = "monitor"
    DSMB = "dsmb"
    STATISTICIAN = "statistician"
    DEMO = "demo"


ROLE_LABELS = {
    Role.CLINICIAN: "ICU clinician",
    Role.MONITOR: "Blinded monitor",
    Role.DSMB: "DSMB (closed session)",
    Role.STATISTICIAN: "Unblinded statistician",
    Role.DEMO: "Demo",
}


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role
    sites: tuple[str, ...] | None = None  # None = all sites
    unmasked: bool = False  # DSMB after a recorded unmask step

    @property
    def arm_visibility(self) -> ArmVisibility:
        if self.role in (Role.STATISTICIAN, Role.DEMO):
            return ArmVisibility.FULL
        if self.role is Role.DSMB:
            return ArmVisibility.FULL if self.unmasked else ArmVisibility.CODED
        return ArmVisibility.NONE

    @property
    def scope(self) -> str:
        """Cache-key scope: results differ by what the arm visibility and sites allow."""
        sites = "all" if self.sites is None else ",".join(sorted(self.sites))
        return f"{self.arm_visibility.value}|{sites}"

    def for_cache(self) -> Principal:
        """The same access without the user name: the memoized renderers take this as an
        argument (its repr is part of the cache key), so the cached content is always computed
        for exactly the access it is served to, and shared by users with the same access."""
        return Principal(user="*", role=self.role, sites=self.sites, unmasked=self.unmasked)

    @property
    def may_ingest(self) -> bool:
        """The role may import data (:data:`INGEST_ROLES`)."""
        return self.role in INGEST_ROLES

    @property
    def label(self) -> str:
        return ROLE_LABELS[self.role]


#: roles that may import data (``POST /api/v1/fhir``): the data manager (unblinded statistician)
#: and the demo role, the roles of the Data page's upload
INGEST_ROLES = frozenset({Role.STATISTICIAN, Role.DEMO})


DEMO_PRINCIPAL = Principal(user="demo", role=Role.DEMO)
#: stands in where Dash itself renders the layout outside a user request (server setup):
#: no sites, no arm; never served to a client (the request gate refuses anonymous requests)
ANONYMOUS = Principal(user="", role=Role.CLINICIAN, sites=())


class NotAuthenticated(PermissionError):
    """No valid session: the request is refused (HTTP 401), never answered with data."""


def current_principal() -> Principal:
    """The principal of the current request.

    Demo mode: the demo principal (unblinded, synthetic data only). Login mode: the principal
    that the request gate (:mod:`components.server.security`) authenticated; none ->
    NotAuthenticated.
    """
    settings = current_app.extensions["immunosep"]["settings"]
    if settings.mode == "demo":
        return DEMO_PRINCIPAL
    principal = g.get("principal")
    if principal is None:
        raise NotAuthenticated("login required")
    return principal
