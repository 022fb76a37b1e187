"""The shared cache (issue 9): real Redis, an outage and a recovery, import invalidation, and
no cross-role cache poisoning under gunicorn with several workers."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from werkzeug.security import generate_password_hash

from settings import Settings
from tests.app.conftest import free_port, run_gunicorn

pytestmark = pytest.mark.redis


@contextlib.contextmanager
def redis_server(port: int, tmp: Path) -> Iterator[redis.Redis]:
    """A private redis-server on a free loopback port (not the shared 6379)."""
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        with contextlib.suppress(redis.ConnectionError):
            if client.ping():
                break
        time.sleep(0.05)
    try:
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def copy_db(demo_db_url: str, tmp: Path) -> str:
    db = tmp / "copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    return f"sqlite:///{db}"


def test_cache001_redis_outage_recompute_and_recovery(demo_db_url, tmp_path, caplog):
    import app as app_module

    port = free_port()
    settings = Settings(
        database_url=copy_db(demo_db_url, tmp_path),
        redis_url=f"redis://127.0.0.1:{port}/0",
        secret_key="k",
        mode="demo",
    )
    with redis_server(port, tmp_path) as r:
        app = app_module.create_app(settings)
        client = app.server.test_client()
        first = client.get("/api/v1/cohort/summary")
        assert first.status_code == 200
        keys = r.keys("immunosep:*")
        assert len(keys) >= 3, "memoized computations must land in Redis"
        health = client.get("/healthz").get_json()
        assert health["cache"] == {"backend": "redis", "ok": True}
    # Redis is gone: hot entries come from the process cache, new ones are computed, answers
    # are identical, and the outage is logged
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        started = time.perf_counter()
        during = client.get("/api/v1/cohort/summary")
        fresh = client.get("/api/v1/patients/SYN-01-0001/sofa")  # never computed before
        elapsed = time.perf_counter() - started
    assert during.status_code == 200
    assert during.get_json() == first.get_json()
    assert fresh.status_code == 200
    assert fresh.get_json()["days"][0]["study_day"] == 1
    assert any("cache backend" in rec.getMessage() for rec in caplog.records)
    assert elapsed < 10
    assert client.get("/healthz").get_json()["cache"]["ok"] is False
    # Redis is back (same port, empty): caching resumes: new computations land in Redis again
    with redis_server(port, tmp_path) as r:
        assert r.keys("immunosep:*") == []
        from components.server.cache import RETRY_AFTER_S

        time.sleep(RETRY_AFTER_S + 0.2)  # the circuit breaker retries Redis after this pause
        again = client.get("/api/v1/cohort/summary")
        assert again.get_json() == first.get_json()
        assert client.get("/api/v1/patients/SYN-01-0002/sofa").status_code == 200
        assert len(r.keys("immunosep:*")) >= 1
        assert client.get("/healthz").get_json()["cache"]["ok"] is True


def test_cache002_import_bumps_version_and_no_stale_answer(demo_db_url, tmp_path):
    """An import changes the dataset version; cached answers of the old version are not served."""
    import app as app_module
    from core.db import make_engine
    from core.io import import_tables, template_tables

    url = copy_db(demo_db_url, tmp_path)
    settings = Settings(
        database_url=url, cache_dir=str(tmp_path / "cache"), secret_key="k", mode="demo"
    )
    app = app_module.create_app(settings)
    client = app.server.test_client()
    before = client.get("/api/v1/version").get_json()
    assert len(client.get("/api/v1/patients").get_json()["patients"]) == 276
    import_tables(make_engine(url), template_tables(), user="test")
    after = client.get("/api/v1/version").get_json()
    assert after["dataset_version"] != before["dataset_version"]
    assert after["patients"] == 279
    assert len(client.get("/api/v1/patients").get_json()["patients"]) == 279


class HttpClient:
    """requests.Session with the small interface the blinding crawler uses."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    class _Resp:
        def __init__(self, r: requests.Response):
            self.r = r
            self.status_code = r.status_code
            self.headers = r.headers

        def get_data(self, as_text: bool = True) -> str:
            return self.r.text

        def get_json(self):
            return self.r.json()

    def get(self, path: str):
        return self._Resp(self.session.get(self.base + path, allow_redirects=False, timeout=60))

    def post(self, path: str, json=None, data=None):
        return self._Resp(
            self.session.post(
                self.base + path, json=json, data=data, allow_redirects=False, timeout=60
            )
        )


def http_login(client: HttpClient, user: str, password: str) -> None:
    page = client.get("/login").get_data()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/login", data={"user": user, "password": password, "csrf": token, "next": "/"}
    )
    assert resp.status_code == 302


@pytest.mark.slow
def test_cache003_no_cross_role_poisoning_under_gunicorn(demo_db_url, tmp_path):
    """Unblinded requests first fill the shared Redis cache; blinded requests that follow, on
    any of 3 workers, still get blinded answers."""
    from tests.app.test_blinding import NONE_PATTERN, Crawl, leaks

    users = [
        {
            "user": "stat",
            "password_hash": generate_password_hash("pw-stat"),
            "role": "statistician",
        },
        {"user": "mon", "password_hash": generate_password_hash("pw-mon"), "role": "monitor"},
    ]
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    port = free_port()
    with redis_server(port, tmp_path) as r:
        env = {
            "DATABASE_URL": copy_db(demo_db_url, tmp_path),
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "IMMUNOSEP_MODE": "login",
            "IMMUNOSEP_USERS_FILE": str(users_file),
        }
        with run_gunicorn(env, tmp_path, workers=3) as server:
            stat = HttpClient(server.url)
            http_login(stat, "stat", "pw-stat")
            unblinded = Crawl(stat)
            for _ in range(3):
                unblinded.render("/cohort")
                unblinded.render("/cohort?tab=primary")
                unblinded.get("/api/v1/cohort/summary")
            assert leaks(unblinded, NONE_PATTERN), "the statistician must see the arm (control)"
            n_keys = len(r.keys("immunosep:*"))
            assert n_keys > 5
            mon = HttpClient(server.url)
            http_login(mon, "mon", "pw-mon")
            blinded = Crawl(mon)
            for _ in range(6):  # several requests so that every worker answers some
                blinded.render("/cohort")
                blinded.render("/cohort?tab=primary")
                blinded.render("/cohort?tab=safety")
                blinded.get("/api/v1/cohort/summary")
            assert leaks(blinded, NONE_PATTERN) == []
            assert "by_group" not in mon.get("/api/v1/cohort/summary").get_json()
            workers = set(re.findall(r"Booting worker with pid: (\d+)", server.log.read_text()))
            assert len(workers) == 3
