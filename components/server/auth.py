"""Who is asking: the principal of the current request and what their role may see.

The role decides, on the server, whether the randomised arm may be used at all
(docs/blinding.md section 6). Blinded roles never get arm data from the service layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
from flask import current_app, g

from core.exceptions import Problem
from core.policy import ArmVisibility
from settings import Settings

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


#: the prefix of every id of the synthetic demo data (docs/architecture.md "Raw long format")
DEMO_ID_PREFIX = "SYN-"


def ingest_refusal(principal: Principal, settings: Settings) -> str | None:
    """Why ``principal`` may not import now (None: they may).

    Demo mode is read-only unless ``IMMUNOSEP_DEMO_UPLOADS=1`` (issue 16: an anonymous
    upload of 3 real-looking patients turned the public demo into "real data", which demo mode
    refuses to serve, so every page answered 403 for everyone).
    """
    if principal.role not in INGEST_ROLES:
        return f"the role {principal.role.value!r} may not import data"
    if not settings.uploads_open:
        return (
            "this demo is read-only: uploads are switched off (the operator can open them with "
            "IMMUNOSEP_DEMO_UPLOADS=1, for synthetic SYN- data only)"
        )
    return None


def demo_data_problems(tables: Mapping[str, pd.DataFrame], settings: Settings) -> list[Problem]:
    """In demo mode, every patient and site id of an upload must be synthetic (``SYN-``):
    anything else would make the demo's data "real" and close the demo for every visitor.
    One problem per table and column, naming the first offending ids. Login mode: none."""
    if settings.mode != "demo":
        return []
    problems = []
    for name, frame in tables.items():
        for column in ("patient_id", "site_id"):
            if column not in frame.columns:
                continue
            values = frame[column].dropna().astype(str)
            bad = values[~values.str.startswith(DEMO_ID_PREFIX)]
            if len(bad):
                problems.append(
                    Problem(
                        frame.attrs.get("source", name),
                        int(bad.index[0]) if isinstance(bad.index[0], int) else None,
                        column,
                        ", ".join(bad.unique()[:5]),
                        f"synthetic ids starting with {DEMO_ID_PREFIX!r}: the public demo "
                        f"accepts synthetic data only ({len(bad)} row(s) of {name} are not)",
                    )
                )
    return problems
