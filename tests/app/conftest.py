"""Fixtures for app-level tests: a demo database, a live gunicorn server, a headless browser.

The demo database is built once per test session and shared between xdist workers (a file lock
in the shared base temp folder), because generating and scoring the cohort takes a few seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with the default synthetic cohort (built once, shared by xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    # xdist workers share their run's folder; a plain run uses its own (never the parent, which
    # every earlier run and every checkout on the machine shares: it could hold a stale cohort)
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    db = shared / "demo.sqlite"
    url = f"sqlite:///{db}"
    with open(shared / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "demo.ready").exists():
            from core.db import ensure_schema, make_engine
            from core.io import build_demo_database

            engine = make_engine(url)
            ensure_schema(engine)
            build_demo_database(engine, seed=20251208, n_randomised=281)
            engine.dispose()
            (shared / "demo.ready").touch()
    return url


@dataclass(frozen=True)
class LiveServer:
    url: str
    process: subprocess.Popen
    log: Path


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def run_gunicorn(env_extra: dict[str, str], tmp: Path, *, workers: int = 2) -> Iterator[LiveServer]:
    port = free_port()
    log = tmp / f"gunicorn-{port}.log"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "CACHE_DIR": str(tmp / "cache"),
        "SECRET_KEY": "test-secret-key",
        **env_extra,
    }
    if "REDIS_URL" not in env_extra:
        env.pop("REDIS_URL", None)
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:server", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            # its own process group, stopped as a whole: a worker whose master was killed
            # after the graceful timeout lived on (and kept its port) after the test session
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield LiveServer(url=f"http://127.0.0.1:{port}", process=proc, log=log)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-4000:]}") from None
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (master, workers, warm-up), SIGKILL to what is
    left after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo dashboard under gunicorn (2 workers) on a free loopback port."""
    tmp = tmp_path_factory.mktemp("live")
    with run_gunicorn({"DATABASE_URL": demo_db_url, "IMMUNOSEP_MODE": "demo"}, tmp) as server:
        yield server


def chromium_available() -> bool:
    return chromium.available()


@pytest.fixture
def browser(tmp_path: Path):
    """Headless Chromium driven by selenium (bench/chromium.py), the browser console captured."""
    if not chromium_available():
        pytest.fail("chromium and chromedriver are required: run scripts/test, which installs them")
    driver = chromium.start(tmp_path / "chrome-profile", (1366, 768), console_log=True)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


RELOAD_MARK = "__immunosepBeforeReload"
# what chromedriver answers to a command sent while the old document is going away
NAVIGATION_ERRORS = ("aborted by navigation", "execution context", "target frame detached")


@contextlib.contextmanager
def expect_reload(driver, timeout: float = 60.0) -> Iterator[None]:
    """The step in the with-block makes the page load again (a clientside ``location.reload()``
    after a callback answers). Mark the current document, run the step, then wait until a new
    document, one without the mark, has finished loading. A command sent while the old document
    goes away can be aborted by the navigation; only those answers are retried, any other error
    is raised. Without this a wait for an element can poll the old page (and pass on it) or be
    aborted mid-navigation."""
    driver.execute_script(f"window.{RELOAD_MARK} = true;")
    yield

    def reloaded(d) -> bool:
        try:
            return bool(
                d.execute_script(
                    f"return document.readyState === 'complete' && !window.{RELOAD_MARK};"
                )
            )
        except WebDriverException as exc:
            if any(text in str(exc).lower() for text in NAVIGATION_ERRORS):
                return False
            raise

    WebDriverWait(driver, timeout).until(reloaded, "the page did not load again")
