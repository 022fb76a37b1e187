"""The cache key of every memoized computation: one frozen :class:`Context`.

A memoized function takes a ``Context`` (and, for the cohort, frozen ``CohortFilters``) and
reads its rules FROM the context, never from the settings: so whatever the function reads is in
its key. flask-caching builds the key from the arguments' ``repr``; ``Context.__repr__`` names
the data version, the key of every rule set (a hash of all their fields), the arm visibility
and the sites.

Invalidation is the data version: an import bumps it in the same transaction that writes the
data (``core.db.bump_dataset_version``), so every worker on every server computes new keys
from its next request, and stale entries simply expire.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from components.server.auth import ArmVisibility, Principal
from components.server.context import dataset_info, settings
from core.rules import EndpointRules, PhenotypeThresholds, SofaRules


@dataclass(frozen=True, repr=False)
class Context:
    """Everything a cached result depends on besides its own arguments."""

    version: str
    sofa_rules: SofaRules
    thresholds: PhenotypeThresholds
    endpoint_rules: EndpointRules
    visibility: ArmVisibility = ArmVisibility.NONE
    sites: tuple[str, ...] | None = None  # None = all sites

    @classmethod
    def current(cls, principal: Principal | None = None) -> Context:
        """The context of the current data version and settings, for ``principal``'s access
        (None: role-independent, all sites, no arm)."""
        s = settings()
        ctx = cls(
            version=dataset_info().version,
            sofa_rules=s.sofa_rules,
            thresholds=s.phenotype_thresholds,
            endpoint_rules=s.endpoint_rules,
        )
        return ctx if principal is None else ctx.for_access(principal)

    def for_access(self, principal: Principal) -> Context:
        sites = None if principal.sites is None else tuple(sorted(set(principal.sites)))
        return replace(self, visibility=principal.arm_visibility, sites=sites)

    def shared(self) -> Context:
        """The role-independent context (no arm, all sites): for per-patient tables that every
        role's results are cut from."""
        return replace(self, visibility=ArmVisibility.NONE, sites=None)

    def __repr__(self) -> str:
        sites = "all" if self.sites is None else ",".join(self.sites)
        return (
            f"Context({self.version}|sofa={self.sofa_rules.key()}|"
            f"thr={self.thresholds.key()}|ep={self.endpoint_rules.key()}|"
            f"{self.visibility.value}|{sites})"
        )
