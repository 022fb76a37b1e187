"""The audit trail's writer for the web layer (the store is :mod:`core.repository`)."""

from __future__ import annotations

from components.server.auth import Principal, current_principal
from components.server.context import engine
from core.repository import record_audit


def audit(
    action: str,
    target: str | None = None,
    detail: str | None = None,
    *,
    principal: Principal | None = None,
) -> None:
    """Append an audit-trail row for the current (or given) principal."""
    if principal is None:
        try:
            principal = current_principal()
        except PermissionError:
            principal = None
    record_audit(
        engine(),
        user=principal.user if principal else "anonymous",
        role=principal.role.value if principal else "none",
        action=action,
        target=target,
        detail=detail,
    )
