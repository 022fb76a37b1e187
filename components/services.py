"""Service layer between the pages and ``core``: engine, dataset version, cached computations.

Callbacks stay thin: they call these functions, which call ``core`` and memoize the result in
the shared flask-caching backend (Redis or the filesystem, so every gunicorn worker sees it).
Every cache key carries the dataset version, the rules key and, where the answer depends on the
role, the principal's scope, so an import or a rule change can never serve a stale entry and a
blinded request can never be served an unblinded one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_app_context
from flask_caching import Cache
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from settings import Settings

log = logging.getLogger(__name__)

#: flask-caching front object; bound to the Flask server in app.create_app (init_app)
cache = Cache()

EXTENSION = "immunosep"


def settings() -> Settings:
    return current_app.extensions[EXTENSION]["settings"]


def engine() -> Engine:
    """The SQLAlchemy engine of this process (re-created after a fork, never shared)."""
    ext = current_app.extensions[EXTENSION]
    pid = os.getpid()
    if ext.get("engine_pid") != pid:
        from core.db import make_engine

        ext["engine"] = make_engine(ext["settings"].database_url)
        ext["engine_pid"] = pid
    return ext["engine"]


@dataclass(frozen=True)
class DatasetInfo:
    version: str
    n_patients: int
    synthetic: bool
    ready: bool


def dataset_info() -> DatasetInfo:
    """Version, size and provenance of the loaded data (cheap: two small queries)."""
    eng = engine()
    if not inspect(eng).has_table("patients"):
        return DatasetInfo(version="empty", n_patients=0, synthetic=False, ready=False)
    from core.db import dataset_version

    with eng.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM patients")).scalar_one()
        n_real = conn.execute(
            text("SELECT count(*) FROM patients WHERE patient_id NOT LIKE 'SYN-%'")
        ).scalar_one()
    return DatasetInfo(
        version=dataset_version(eng), n_patients=int(n), synthetic=n > 0 and n_real == 0, ready=n > 0
    )


def cache_backend_status() -> dict[str, Any]:
    """Which cache backend is configured and whether it answers."""
    s = settings()
    status: dict[str, Any] = {"backend": s.cache_backend}
    if s.redis_url:
        try:
            cache.cache._write_client.ping()  # RedisCache exposes the redis client
            status["ok"] = True
        except Exception as exc:  # noqa: BLE001 - report, never fail the health check
            status["ok"] = False
            status["error"] = type(exc).__name__
    else:
        status["ok"] = True
        status["dir"] = s.cache_dir
    return status


def in_app() -> bool:
    return has_app_context() and EXTENSION in current_app.extensions
