"""Authentication, request gating, security headers and error handling (issue 8).

- ``IMMUNOSEP_MODE=demo``: no login; the demo principal (unblinded, DEMO watermark). Refused
  (HTTP 403) when the loaded data are not synthetic: demo mode must never unblind a real trial.
- ``IMMUNOSEP_MODE=login``: users from ``IMMUNOSEP_USERS_FILE`` (werkzeug password hashes) sign
  in at ``/login``; or, behind a reverse proxy, ``IMMUNOSEP_AUTH_HEADER`` names the header that
  carries the authenticated user name (the role still comes from the users file).
  Every page, callback, download and API call without a valid session is refused: HTTP 401
  for ``/_dash-*`` and ``/api/*``, a redirect to ``/login`` for pages. Never data.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax) with a server-checked expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from flask import Flask, Response, g, jsonify, redirect, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from components.server.auth import NotAuthenticated, Principal, Role
from components.server.context import dataset_info
from settings import Settings

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/login", "/logout", "/healthz", "/assets/", "/_favicon.ico")
DATA_PREFIXES = ("/_dash-", "/api/")


@dataclass(frozen=True)
class UserRecord:
    user: str
    password_hash: str | None
    role: Role
    sites: tuple[str, ...] | None


def load_users(path: str | None) -> dict[str, UserRecord]:
    """Read the users file: a JSON list of {user, password_hash, role, sites (optional)}."""
    if not path:
        return {}
    raw = json.loads(Path(path).read_text())
    users: dict[str, UserRecord] = {}
    for i, entry in enumerate(raw, start=1):
        try:
            role = Role(entry["role"])
            name = str(entry["user"])
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{path}: user entry {i}: expected 'user' and a 'role' in {[r.value for r in Role]}"
            ) from exc
        if role is Role.DEMO:
            raise ValueError(f"{path}: user {name!r}: the demo role is not a login role")
        sites = entry.get("sites")
        users[name] = UserRecord(
            user=name,
            password_hash=entry.get("password_hash"),
            role=role,
            sites=None if sites is None else tuple(str(s) for s in sites),
        )
    return users


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def _principal_from_session(settings: Settings) -> Principal | None:
    data = session.get("principal")
    if not data:
        return None
    if time.time() - float(data.get("login_at", 0)) > settings.session_minutes * 60:
        session.clear()
        return None
    return Principal(
        user=data["user"],
        role=Role(data["role"]),
        sites=None if data.get("sites") is None else tuple(data["sites"]),
        unmasked=bool(data.get("unmasked", False)),
    )


def start_session(record: UserRecord) -> Principal:
    session.clear()
    session.permanent = True
    session["principal"] = {
        "user": record.user,
        "role": record.role.value,
        "sites": None if record.sites is None else list(record.sites),
        "unmasked": False,
        "login_at": time.time(),
    }
    return Principal(user=record.user, role=record.role, sites=record.sites)


def mark_unmasked() -> None:
    """DSMB unmask step: the session shows real labels from now on (audited by the caller)."""
    data = dict(session["principal"])
    data["unmasked"] = True
    session["principal"] = data


def _login_page(message: str = "", next_url: str = "/") -> str:
    token = secrets.token_urlsafe(24)
    session["login_csrf"] = token
    alert = f'<div class="alert alert-danger py-2">{escape(message)}</div>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>ImmunoSep: sign in</title><link rel="stylesheet" href="/assets/00_bootstrap.min.css"></head>
<body class="bg-light"><main class="container" style="max-width:26rem;margin-top:10vh">
<h1 class="h4 mb-3">ImmunoSep dashboard</h1>{alert}
<form method="post" action="/login" class="card card-body">
<input type="hidden" name="csrf" value="{token}"><input type="hidden" name="next" value="{escape(next_url)}">
<label class="form-label" for="user">User</label>
<input class="form-control mb-2" id="user" name="user" autocomplete="username" required>
<label class="form-label" for="password">Password</label>
<input class="form-control mb-3" id="password" name="password" type="password"
 autocomplete="current-password" required>
<button class="btn btn-primary" type="submit">Sign in</button></form>
<p class="small text-muted mt-3">Access is logged. Treatment allocation is shown only to
roles allowed to see it.</p></main></body></html>"""


def _safe_next(url: str | None) -> str:
    """Only same-site relative paths (no open redirect)."""
    if not url:
        return "/"
    parsed = urlparse(url)
    if parsed.scheme or parsed.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url


_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE
)


def inline_script_hashes(html_text: str) -> list[str]:
    """CSP sha256 sources of the executable inline scripts of a page (Dash's renderer and
    clientside callbacks), so script-src needs neither 'unsafe-inline' nor 'unsafe-eval'."""
    out = []
    for attrs, body in _INLINE_SCRIPT.findall(html_text):
        if "application/json" in attrs:
            continue  # data, never executed
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        out.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return sorted(set(out))


def install(server: Flask, settings: Settings, *, csp_script_hashes: list[str], audit) -> None:
    """Register the auth gate, login/logout routes, security headers and error handlers.

    ``audit(action, target, detail, principal=None)`` records an audit row.
    """
    users = load_users(settings.users_file)
    if settings.mode == "login" and not users:
        raise ValueError("IMMUNOSEP_MODE=login needs IMMUNOSEP_USERS_FILE with at least one user")
    server.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="immunosep_session",
    )
    server.extensions["immunosep"]["users"] = users

    def refuse(status: int, message: str) -> Response:
        if request.path.startswith(DATA_PREFIXES):
            resp = jsonify(error=message)
            resp.status_code = status
            return resp
        if status == 401:
            return redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
        return Response(escape(message), status=status, mimetype="text/plain")

    @server.before_request
    def gate() -> Response | None:
        path = request.path
        if path.startswith(PUBLIC_PREFIXES):
            return None
        if settings.mode == "demo":
            info = dataset_info()
            if info.ready and info.demo_data is None:
                return refuse(
                    403,
                    "Demo mode serves public demo data only (the synthetic trial or the CLIF "
                    "demo); these data are neither.",
                )
            return None
        principal = None
        if settings.auth_header:
            name = request.headers.get(settings.auth_header)
            record = users.get(name or "")
            if record is not None:
                principal = Principal(user=record.user, role=record.role, sites=record.sites)
        if principal is None:
            principal = _principal_from_session(settings)
        if principal is None:
            return refuse(401, "authentication required")
        g.principal = principal
        return None

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        if settings.mode == "demo":
            return redirect("/")
        if request.method == "GET":
            return _login_page(next_url=_safe_next(request.args.get("next")))
        form = request.form
        next_url = _safe_next(form.get("next"))
        expected = session.pop("login_csrf", None)
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return Response(
                _login_page("The form expired; please try again.", next_url), status=400
            )
        record = users.get(form.get("user", ""))
        ok = (
            record is not None
            and record.password_hash is not None
            and check_password_hash(record.password_hash, form.get("password", ""))
        )
        if not ok:
            audit("login_failed", form.get("user", "")[:100], None, principal=None)
            return Response(_login_page("Unknown user or wrong password.", next_url), status=401)
        principal = start_session(record)
        audit("login", principal.user, None, principal=principal)
        return redirect(next_url)

    @server.route("/logout")
    def logout() -> Response:
        data = session.get("principal")
        if data:
            audit("logout", data["user"], None, principal=None)
        session.clear()
        return redirect("/login" if settings.mode == "login" else "/")

    def csp_for(extra_hashes: list[str]) -> str:
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self' " + " ".join([*csp_script_hashes, *extra_hashes]),
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data: blob:",
                "font-src 'self' data:",
                "connect-src 'self'",
                "frame-ancestors 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "object-src 'none'",
            ]
        )

    @server.after_request
    def headers(response: Response) -> Response:
        extra: list[str] = []
        if response.mimetype == "text/html" and not response.direct_passthrough:
            extra = inline_script_hashes(response.get_data(as_text=True))
        response.headers["Content-Security-Policy"] = csp_for(extra)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.path.startswith(("/assets/", "/_dash-component-suites/")):
            # patient data: never kept by the browser or a shared proxy
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        return response

    @server.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return exc  # type: ignore[return-value]
        if isinstance(exc, NotAuthenticated):
            return refuse(401, "authentication required")
        ref = uuid.uuid4().hex[:10]
        log.exception("unhandled error (reference %s) on %s", ref, request.path)
        body: dict[str, Any] = {"error": "internal error", "reference": ref}
        resp = jsonify(body)
        resp.status_code = 500
        return resp
