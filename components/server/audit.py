"""The audit trail's writer for the web layer (the one writer is :func:`core.audit.record_audit`,
which the command line uses too; rows are hash-chained).

Who is recorded: the given principal, else the request's authenticated principal, else the
principal of the signed session cookie (the logout route runs before the gate, so this is how
a logout is recorded with its user), else ``anonymous``.

Failed logins are throttled: at most one ``login_failed`` row per tried user name and client
address per minute, carrying the number of attempts (:func:`core.audit.record_audit_throttled`),
so anonymous clients cannot flood the trail.
"""

from __future__ import annotations

from typing import Final

from flask import has_request_context, request, session

from components.server.auth import Principal, current_principal
from components.server.context import engine
from core.audit import record_audit, record_audit_throttled

#: actions written at most once per (action, target, client) and minute, with a count
THROTTLED_ACTIONS: Final = frozenset({"login_failed"})


def _session_identity() -> tuple[str, str] | None:
    """(user, role) of the signed session cookie, if it holds a principal."""
    if not has_request_context():
        return None
    data = session.get("principal")
    if not isinstance(data, dict) or not data.get("user"):
        return None
    return str(data["user"]), str(data.get("role") or "none")


def _identity(principal: Principal | None) -> tuple[str, str]:
    if principal is None:
        try:
            principal = current_principal()
        except PermissionError:
            principal = None
    if principal is not None and principal.user:
        return principal.user, principal.role.value
    return _session_identity() or ("anonymous", "none")


def client_address() -> str:
    """The client's address as the server sees it (``-`` outside a request)."""
    if not has_request_context():
        return "-"
    return request.remote_addr or "-"


def audit(
    action: str,
    target: str | None = None,
    detail: str | None = None,
    *,
    principal: Principal | None = None,
) -> int | None:
    """Append an audit-trail row for the current (or given) principal; returns its id (None
    for a throttled attempt counted without a row)."""
    user, role = _identity(principal)
    if action in THROTTLED_ACTIONS:
        client = client_address()
        text = f"client={client}" if not detail else f"{detail}; client={client}"
        return record_audit_throttled(
            engine(),
            key=f"{action}|{target or ''}|{client}",
            user=user,
            role=role,
            action=action,
            target=target,
            detail=text,
        )
    return record_audit(engine(), user=user, role=role, action=action, target=target, detail=detail)


def audit_logout(user: str, role: str) -> int:
    """Record a logout of ``user`` (for a logout route that has already cleared the session:
    call it with the principal read before clearing)."""
    return record_audit(engine(), user=user, role=role, action="logout", target=user)
