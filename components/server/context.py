"""The application context of a request or a background process: settings, the database
engine and the loaded dataset (its version is inside every cache key).

One Flask extension entry (``server.extensions["immunosep"]``) holds the frozen
:class:`settings.Settings` and this process's engine; nothing else reads the environment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from components.server.cache import cache
from core.db import dataset_version, make_engine
from settings import Settings

EXTENSION = "immunosep"


def settings() -> Settings:
    """The frozen settings of this app (read once from the environment by settings.py)."""
    return current_app.extensions[EXTENSION]["settings"]


def engine() -> Engine:
    """The SQLAlchemy engine of this process (re-created after a fork, never shared)."""
    ext = current_app.extensions[EXTENSION]
    pid = os.getpid()
    if ext.get("engine_pid") != pid:
        ext["engine"] = make_engine(ext["settings"].database_url)
        ext["engine_pid"] = pid
    return ext["engine"]


def in_app() -> bool:
    return has_app_context() and EXTENSION in current_app.extensions


def bare_app(s: Settings) -> Flask:
    """A Flask app with only the settings and the cache bound: what the data layer needs
    outside the Dash front end (the warm-up process, scripts, benchmarks)."""
    server = Flask("immunosep-services")
    server.extensions[EXTENSION] = {"settings": s}
    server.config["SECRET_KEY"] = s.secret_key  # the cache MAC key is derived from it
    cache.init_app(server, config=s.cache_config())
    return server


@dataclass(frozen=True)
class DatasetInfo:
    version: str
    n_patients: int
    synthetic: bool
    ready: bool
    #: which public demo dataset the data are ("synthetic", "clif-demo"), None for real data
    demo_data: str | None = None


#: import sources of the public demo datasets (core.io.demo), by dataset
_DEMO_SOURCES = (("synthetic", "synthetic:"), ("clif-demo", "clif-demo:"))


@cache.memoize()
def _dataset_counts(version: str) -> tuple[int, bool, str | None]:
    """(patients, synthetic?, public demo dataset or None) of one dataset version (memoized:
    versions never change). The data are a public demo only when every import came from one
    (import log sources ``synthetic:*`` or ``clif-demo:*``): any other import makes them real."""
    with engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM patients")).scalar_one()
        n_real = conn.execute(
            text("SELECT count(*) FROM patients WHERE patient_id NOT LIKE 'SYN-%'")
        ).scalar_one()
        logged = conn.execute(
            text("SELECT source_names FROM import_log WHERE status = 'imported'")
        ).scalars()
        sources = [name for row in logged for name in json.loads(row)]
    synthetic = n > 0 and n_real == 0
    demo = "synthetic" if synthetic else None
    for dataset, prefix in _DEMO_SOURCES:
        if n > 0 and sources and all(name.startswith(prefix) for name in sources):
            demo = demo or dataset
    return int(n), synthetic, demo


def dataset_info() -> DatasetInfo:
    """Version, size and provenance of the loaded data.

    One single-row query per call (the version); the counts are memoized per version, so
    every request sees the current version and an import is visible at once on every worker.
    """
    if has_request_context() and "dataset_info" in g:
        return g.dataset_info  # one version per request: consistent and cheap
    eng = engine()
    ext = current_app.extensions[EXTENSION]
    if not ext.get("schema_ready"):
        if not inspect(eng).has_table("patients"):
            return DatasetInfo(version="empty", n_patients=0, synthetic=False, ready=False)
        ext["schema_ready"] = True
    version = dataset_version(eng)
    n, synthetic, demo = _dataset_counts(version)
    info = DatasetInfo(
        version=version, n_patients=n, synthetic=synthetic, ready=n > 0, demo_data=demo
    )
    if has_request_context():
        g.dataset_info = info
    return info


def cache_backend_status() -> dict[str, Any]:
    """Which cache backend is configured and whether it answers."""
    s = settings()
    status: dict[str, Any] = {"backend": s.cache_backend}
    if s.redis_url:
        try:
            backend = getattr(cache.cache, "shared", cache.cache)  # behind the process LRU
            backend._write_client.ping()  # RedisCache exposes the redis client
            status["ok"] = True
        except Exception as exc:  # noqa: BLE001 - report, never fail the health check
            status["ok"] = False
            status["error"] = type(exc).__name__
    else:
        status["ok"] = True
        status["dir"] = s.cache_dir
    return status
