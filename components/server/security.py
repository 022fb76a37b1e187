"""Authentication, request gating, security headers and error handling (issue 8).

- ``IMMUNOSEP_MODE=demo``: no login; the demo principal (unblinded, DEMO watermark). Refused
  (HTTP 403) when the loaded data are not synthetic: demo mode must never unblind a real trial.
- ``IMMUNOSEP_MODE=login``: users from ``IMMUNOSEP_USERS_FILE`` (werkzeug password hashes) sign
  in at ``/login``; or, behind a reverse proxy, ``IMMUNOSEP_AUTH_HEADER`` names the header that
  carries the authenticated user name (the role still comes from the users file).
  Every page, callback, download and API call without a valid session is refused: HTTP 401
  for ``/_dash-*`` and ``/api/*``, a redirect to ``/login`` for pages. Never data.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure with
``IMMUNOSEP_SECURE_COOKIES``) with a server-checked expiry. The cookie only says WHO signed in,
when, and the version of their record; it is bound to the server's truth (issue 16):

- the role and sites come from the users file on every request (re-read when the file changes),
  never from the cookie; the cookie's ``ver`` (a hash of the user's role, sites and password
  hash) must match the current record, so removing, demoting or changing the password of a user
  refuses their sessions on the next request in every worker and server;
- sign-out writes the user's sign-out time to the logout file (``Settings.logout_path``, shared
  by workers and kept across restarts); a session that started before it is refused, so a copied
  cookie dies with the sign-out (every session of that user ends).

Sign-in: the same work (one password hash check) for known and unknown users; failures are
throttled per user name and per client address (:class:`LoginThrottle`: HTTP 429 with
Retry-After, audited once per burst); public routes are exact paths (and ``/assets/``), and the
favicon never touches the login state; sign-out is a POST (GET shows a form).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import sqlalchemy as sa
from flask import Flask, Response, g, jsonify, redirect, request, session
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from components.server.auth import NotAuthenticated, Principal, Role
from components.server.context import dataset_info, engine
from core.db import audit_engine, is_sqlite, login_failure
from settings import Settings

log = logging.getLogger(__name__)

#: exact public paths (``/loginx`` is not ``/login``) and the one public folder; the API's
#: OpenAPI description holds no data (tools fetch it before they sign in)
PUBLIC_PATHS = frozenset(
    {
        "/login",
        "/logout",
        "/healthz",
        "/favicon.ico",
        "/_favicon.ico",
        "/api/v1/openapi.json",
    }
)
PUBLIC_PREFIXES = ("/assets/",)
DATA_PREFIXES = ("/_dash-", "/api/")
#: sign-in throttle: this many failures within the window block the user name / the client
THROTTLE_FAILURES = 10
THROTTLE_WINDOW_S = 300.0


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


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


def record_version(record: UserRecord) -> str:
    """The session version of a user: changes when their role, sites or password change."""
    raw = json.dumps(
        [
            record.user,
            record.role.value,
            None if record.sites is None else sorted(record.sites),
            record.password_hash,
        ]
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _file_key(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class UserStore:
    """The users file, re-read whenever it changes (a stat per request, shared by threads)."""

    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int, int, int] | None = None
        self._users: dict[str, UserRecord] = load_users(path)
        if path:
            self._key = _file_key(path)

    def users(self) -> dict[str, UserRecord]:
        if not self.path:
            return self._users
        key = _file_key(self.path)
        with self._lock:
            # a file rewritten within the timestamp granularity may keep its key: re-read it
            # while its change is recent
            if key != self._key or (key is not None and time.time() - key[2] / 1e9 < 2.0):
                try:
                    self._users = load_users(self.path) if key is not None else {}
                except (OSError, ValueError) as exc:
                    # a file being rewritten or broken: nobody is let in until it is readable
                    log.error("users file %s unreadable (%s): refusing sessions", self.path, exc)
                    self._users = {}
                    key = None  # retried on the next request
                self._key = key
            return self._users

    def get(self, name: str) -> UserRecord | None:
        return self.users().get(name)


class LogoutStore:
    """Each user's last sign-out time, in a JSON file shared by every worker and restart."""

    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int, int, int] | None = None
        self._times: dict[str, float] = {}

    def times(self) -> dict[str, float]:
        if not self.path:
            return {}
        key = _file_key(self.path)
        with self._lock:
            if key != self._key:
                try:
                    raw = json.loads(Path(self.path).read_text()) if key is not None else {}
                    self._times = {str(k): float(v) for k, v in raw.items()}
                except (OSError, ValueError, AttributeError) as exc:
                    log.error("logout file %s unreadable (%s)", self.path, exc)
                    key = None
                self._key = key
            return self._times

    def logged_out_at(self, user: str) -> float:
        return self.times().get(user, 0.0)

    def record(self, user: str, at: float) -> None:
        """Set ``user``'s sign-out time (read-modify-write under a file lock, atomic replace)."""
        if not self.path:
            return
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                current = {}
            current[user] = max(float(current.get(user, 0.0)), at)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(current))
            tmp.chmod(0o600)
            os.replace(tmp, path)


class LoginThrottle:
    """Sign-in failures per key (``user:<name>``, ``ip:<address>``) in a sliding window,
    shared by every worker and server through the database (issue 16: a per-process count let
    N workers allow N x 10 guesses).

    One row per failure in ``login_failure`` of the audit store (:func:`core.db.audit_engine`:
    on SQLite a file of its own, so a sign-in never waits behind an import; on PostgreSQL the
    trial database). A key is blocked when it has :data:`THROTTLE_FAILURES` failures within
    :data:`THROTTLE_WINDOW_S`; it may try again when the oldest of those leaves the window.
    Writers serialise (SQLite ``BEGIN IMMEDIATE`` on the audit store, PostgreSQL an advisory
    lock of its own, never the import's), so exactly one failure of a burst reports the key
    as newly blocked (audited once per burst). Rows older than the window are deleted as
    failures arrive.

    ``engine``: the trial database's engine, or a callable returning it (per request); None:
    a private in-memory SQLite database (one process; tests of the window arithmetic).
    """

    #: PostgreSQL advisory lock of the throttle's writers (not the import's LOCK_KEY)
    LOCK_KEY = 0x1A7E52

    def __init__(
        self,
        engine: Engine | Callable[[], Engine] | None = None,
        *,
        limit: int = THROTTLE_FAILURES,
        window: float = THROTTLE_WINDOW_S,
    ):
        self.limit = limit
        self.window = window
        if engine is None:
            engine = sa.create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        self._engine = engine

    def _store(self) -> Engine:
        engine = self._engine() if callable(self._engine) else self._engine
        return audit_engine(engine)

    def _recent(self, conn: Connection, key: str, now: float) -> list[float]:
        t = login_failure
        return list(
            conn.execute(
                sa.select(t.c.at)
                .where(t.c.key == key[:400], t.c.at > now - self.window)
                .order_by(t.c.at.desc())
                .limit(self.limit)
            ).scalars()
        )

    def retry_after(self, keys: list[str], now: float | None = None) -> int:
        """Seconds until every key may try again (0: not blocked)."""
        now = time.time() if now is None else now
        wait = 0.0
        with self._store().connect() as conn:
            for key in keys:
                recent = self._recent(conn, key, now)
                if len(recent) >= self.limit:
                    wait = max(wait, recent[-1] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def _write(self) -> Any:
        store = self._store()
        if is_sqlite(store):
            return store.connect().execution_options(sqlite_begin="IMMEDIATE")
        return store.connect()

    def fail(self, keys: list[str], now: float | None = None) -> list[str]:
        """Record a failure; returns the keys that became blocked by it (once per burst)."""
        now = time.time() if now is None else now
        blocked = []
        t = login_failure
        with self._write() as conn, conn.begin():
            if not is_sqlite(conn):
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.LOCK_KEY})
            conn.execute(t.delete().where(t.c.at <= now - self.window))
            for key in keys:
                was_blocked = len(self._recent(conn, key, now)) >= self.limit
                conn.execute(t.insert(), [{"key": key[:400], "at": now}])
                if not was_blocked and len(self._recent(conn, key, now)) >= self.limit:
                    blocked.append(key)
        return blocked

    def succeed(self, keys: list[str]) -> None:
        t = login_failure
        with self._write() as conn, conn.begin():
            conn.execute(t.delete().where(t.c.key.in_([k[:400] for k in keys])))


def _principal_from_session(
    settings: Settings, users: UserStore, logouts: LogoutStore
) -> Principal | None:
    """The principal of a valid session, resolved from the users file (never the cookie)."""
    data = session.get("principal")
    if not data or not isinstance(data, dict):
        return None
    login_at = float(data.get("login_at", 0))
    record = users.get(str(data.get("user", "")))
    if (
        time.time() - login_at > settings.session_minutes * 60
        or record is None  # removed
        or not hmac.compare_digest(str(data.get("ver", "")), record_version(record))
        or login_at <= logouts.logged_out_at(record.user)  # signed out since
    ):
        session.clear()
        return None
    return Principal(
        user=record.user,
        role=record.role,
        sites=record.sites,
        unmasked=record.role is Role.DSMB and bool(data.get("unmasked", False)),
    )


def start_session(record: UserRecord) -> Principal:
    session.clear()
    session.permanent = True
    session["principal"] = {
        "user": record.user,
        "ver": record_version(record),
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
    # one token per browser session: a second GET (another tab, a stray redirect) must not
    # invalidate the form already shown
    token = session.get("login_csrf") or secrets.token_urlsafe(24)
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


def _logout_page() -> str:
    return """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>ImmunoSep: sign out</title><link rel="stylesheet" href="/assets/00_bootstrap.min.css"></head>
<body class="bg-light"><main class="container" style="max-width:26rem;margin-top:10vh">
<h1 class="h4 mb-3">Sign out of the ImmunoSep dashboard?</h1>
<form method="post" action="/logout" class="card card-body">
<button class="btn btn-primary" type="submit">Sign out</button></form>
<p class="small mt-3"><a href="/">Back to the dashboard</a></p></main></body></html>"""


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


#: the path Dash answers callbacks on
CALLBACK_PATH = "/_dash-update-component"


def callback_body_problem(body: Any, callback_map: dict[str, Any]) -> str | None:
    """What is wrong with the envelope of a callback request (None: well formed), against the
    app's callback map: a known output, as many ``inputs`` / ``state`` entries as the callback
    declares, each an ``{id, property, value}`` object (or a list of them for a pattern-matching
    id), ``changedPropIds`` a list of strings. The answer names shapes only, never a value (it
    is logged). Dash itself fails on such bodies with an unhandled error (HTTP 500); the values
    inside well-formed entries are the callbacks' to check."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        return "unknown callback output"
    spec = callback_map[output]
    for key in ("inputs", "state"):
        given = body.get(key, [])
        expected = len(spec.get(key) or [])
        if not isinstance(given, list) or len(given) != expected:
            return f"{key}: expected a list of {expected} entries"
        for i, entry in enumerate(given):
            items = entry if isinstance(entry, list) else [entry]
            if not all(isinstance(x, dict) and "id" in x and "property" in x for x in items):
                return f"{key}[{i}]: not an {{id, property, value}} entry"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds: expected a list of strings"
    return pattern_output_problem(output, body, spec)


def _pattern_id(raw: Any) -> dict[str, Any] | None:
    """A pattern-matching id of the callback map (a JSON text), None for a plain id."""
    if isinstance(raw, str) and raw.startswith("{"):
        try:
            got = json.loads(raw)
        except ValueError:
            return None
        return got if isinstance(got, dict) else None
    return raw if isinstance(raw, dict) else None


def _names_one(ident: Any, pattern: dict[str, Any], matched: dict[str, Any]) -> bool:
    """Does ``ident`` name one component of ``pattern`` (its fixed keys equal, every wildcard
    key a plain text or number, the MATCH keys equal to ``matched``)?"""
    if not isinstance(ident, dict) or set(ident) != set(pattern):
        return False
    for k, want in pattern.items():
        got = ident[k]
        if isinstance(want, list):  # a wildcard: a concrete value, not a pattern
            if isinstance(got, list | dict | bool) or got is None:
                return False
        elif got != want:
            return False
    return all(ident.get(k) == v for k, v in matched.items() if k in pattern)


def pattern_output_problem(output: str, body: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """A callback with pattern-matching (MATCH) outputs: each entry of ``outputs`` must name one
    component of its output's pattern, all with the same MATCH values, and each MATCH input one
    ``{id, property, value}`` entry of its pattern (not a list) with those values: Dash fails
    with an unhandled error (HTTP 500) on anything else, and a callback would be handed a
    pattern where it expects a name."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    patterns = [_pattern_id(part.rpartition(".")[0]) for part in parts]
    if not any(p is not None and ["MATCH"] in p.values() for p in patterns):
        return None
    outputs = body.get("outputs")
    given = outputs if isinstance(outputs, list) else [outputs]
    if not isinstance(outputs, list if output.startswith("..") else dict) or len(given) != len(
        parts
    ):
        return "outputs: expected one entry per output of the callback"
    matched: dict[str, Any] = {}
    for part, pattern, entry in zip(parts, patterns, given, strict=True):
        prop = part.rpartition(".")[2].split("@", 1)[0]
        if not isinstance(entry, dict) or entry.get("property") != prop:
            return "outputs: expected one component of the callback's pattern-matching output"
        if pattern is None:
            continue
        if not _names_one(entry.get("id"), pattern, matched):
            return "outputs: expected one component of the callback's pattern-matching output"
        matched.update({k: entry["id"][k] for k, v in pattern.items() if v == ["MATCH"]})
    for i, declared in enumerate(spec.get("inputs") or []):
        want = _pattern_id(declared.get("id"))
        if want is None or ["MATCH"] not in want.values():
            continue
        entry = body["inputs"][i]
        if not isinstance(entry, dict) or not _names_one(entry.get("id"), want, matched):
            return f"inputs[{i}]: expected the component of the output's pattern"
    return None


def install_callback_guard(server: Flask, callback_map: Callable[[], dict[str, Any]]) -> None:
    """Refuse malformed callback envelopes (:func:`callback_body_problem`) with HTTP 400 and a
    log line naming the shape problem (no value, no patient data), before Dash parses them."""

    @server.before_request
    def callback_guard() -> Response | None:
        if request.method != "POST" or not request.path.endswith(CALLBACK_PATH):
            return None
        body = request.get_json(silent=True)
        problem = callback_body_problem(body, callback_map())
        if problem is None:
            return None
        output = body.get("output") if isinstance(body, dict) else None
        log.warning(
            "refused a malformed callback request (%s) for %s",
            problem,
            output[:120] if isinstance(output, str) else "?",
        )
        resp = jsonify(error="malformed callback request", detail=problem)
        resp.status_code = 400
        return resp


def install(server: Flask, settings: Settings, *, csp_script_hashes: list[str], audit) -> None:
    """Register the auth gate, login/logout routes, security headers and error handlers.

    ``audit(action, target, detail, principal=None)`` records an audit row.
    """
    users = UserStore(settings.users_file)
    if settings.mode == "login" and not users.users():
        raise ValueError("IMMUNOSEP_MODE=login needs IMMUNOSEP_USERS_FILE with at least one user")
    logouts = LogoutStore(settings.logout_path)
    throttle = LoginThrottle(engine)  # shared by workers and servers (the audit store)
    # checked against when the user name is unknown: the same work as for a known user
    dummy_hash = generate_password_hash(secrets.token_urlsafe(16))
    server.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        # a response sends the cookie only when its request changed the session: otherwise a
        # request that started before an unmask or a re-mask and ended after it would send the
        # old session back and undo the step (the lifetime counts from the sign-in, so there is
        # nothing to refresh)
        SESSION_REFRESH_EACH_REQUEST=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="immunosep_session",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
    )
    ext = server.extensions["immunosep"]
    ext.update(users=users, logouts=logouts, login_throttle=throttle)

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
        if is_public(path):
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
            principal = _principal_from_session(settings, users, logouts)
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
        expected = session.get("login_csrf")
        if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
            return Response(
                _login_page("The form expired; please try again.", next_url), status=400
            )
        name = form.get("user", "")[:200]
        keys = [f"user:{name}", f"ip:{request.remote_addr or '-'}"]
        wait = throttle.retry_after(keys)
        if wait:
            resp = Response(
                _login_page(f"Too many failed sign-ins; try again in {wait} s.", next_url),
                status=429,
            )
            resp.headers["Retry-After"] = str(wait)
            return resp
        record = users.get(name)
        stored = record.password_hash if record is not None else None
        # always one hash check: an unknown user costs what a known one costs (no enumeration)
        matches = check_password_hash(stored or dummy_hash, form.get("password", ""))
        if not (matches and record is not None and stored is not None):
            audit("login_failed", name[:100], None, principal=None)
            for key in throttle.fail(keys):
                audit(
                    "login_throttled",
                    key[:100],
                    f"{THROTTLE_FAILURES} failed sign-ins within {THROTTLE_WINDOW_S:.0f} s",
                    principal=None,
                )
            return Response(_login_page("Unknown user or wrong password.", next_url), status=401)
        throttle.succeed([keys[0]])
        principal = start_session(record)
        audit("login", principal.user, None, principal=principal)
        return redirect(next_url)

    @server.route("/favicon.ico")
    def favicon() -> Response:
        """Browsers ask for it unprompted: public, never a redirect to the sign-in page."""
        return redirect("/_favicon.ico", code=301)

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Response | str:
        if request.method == "GET":  # a link or a prefetch never signs anyone out
            return _logout_page()
        principal = _principal_from_session(settings, users, logouts)
        if principal is not None:
            # every session of this user that started until now is refused from here on
            logouts.record(principal.user, time.time())
            audit("logout", principal.user, None, principal=principal)
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
        if settings.hsts_seconds > 0:
            response.headers["Strict-Transport-Security"] = (
                f"max-age={settings.hsts_seconds}; includeSubDomains"
            )
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
