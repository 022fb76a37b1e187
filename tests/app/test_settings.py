"""Settings: one reader of the environment, explicit precedence, documented variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from settings import ENVIRONMENT, PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_set001_defaults_without_environment():
    s = Settings.from_env({"SECRET_KEY": "k"})
    assert s.database_url == f"sqlite:///{PROJECT_ROOT / 'data' / 'immunosep.sqlite'}"
    assert s.redis_url is None
    assert s.cache_backend == "filesystem"
    assert s.cache_config()["CACHE_TYPE"] == "components.server.cache.TwoLevelCache"
    assert "CACHE_REDIS_URL" not in s.cache_config()
    assert (s.port, s.mode, s.secret_key) == (8050, "demo", "k")


def test_set002_environment_then_override_precedence():
    env = {
        "PORT": "9001",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
        "SECRET_KEY": "k",
        "DATABASE_URL": "postgresql+psycopg://root:pw@127.0.0.1:5432/test",
    }
    s = Settings.from_env(env, port=9002)
    assert s.port == 9002
    assert s.cache_config() == {
        "CACHE_TYPE": "components.server.cache.TwoLevelCache",
        "CACHE_REDIS_URL": "redis://127.0.0.1:6379/3",
        "CACHE_DEFAULT_TIMEOUT": 86400,
        "CACHE_KEY_PREFIX": "immunosep:",
        "CACHE_OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
    }
    assert s.database_kind == "postgresql"
    assert s.public_database() == "postgresql+psycopg://***@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT='eighty': expected an integer"),
        ("IMMUNOSEP_MODE", "open", "IMMUNOSEP_MODE='open': expected 'demo' or 'login'"),
        (
            "IMMUNOSEP_DEMO_ENROLMENT_DAYS",
            "0",
            "IMMUNOSEP_DEMO_ENROLMENT_DAYS=0: expected whole days from 1 to 36,500",
        ),
    ],
)
def test_set003_bad_values_are_named(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env({name: value, "SECRET_KEY": "k"})


def test_set004_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    table_rows = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert table_rows == set(ENVIRONMENT)


def test_set005_unknown_override_rejected():
    with pytest.raises(TypeError, match="unknown settings"):
        Settings.from_env({"SECRET_KEY": "k"}, colour="red")


def test_set006_upload_limit_in_one_place_and_the_request_limit_follows():
    s = Settings.from_env({"SECRET_KEY": "k", "IMMUNOSEP_UPLOAD_MAX_MB": "5"})
    assert s.upload_max_bytes == 5 * 1024 * 1024
    # a file exactly at the limit, base64-encoded inside the callback JSON, still gets through
    assert s.request_max_bytes >= -(-s.upload_max_bytes * 4 // 3) + 1000
    assert Settings.from_env({"SECRET_KEY": "k"}).upload_max_mb == 20


def test_set007_demo_enrolment_packing_default_is_the_demo_builders():
    from core.io.demo import DEMO_ENROLMENT_DAYS

    assert Settings.from_env({"SECRET_KEY": "k"}).demo_enrolment_days == DEMO_ENROLMENT_DAYS
    env = {"SECRET_KEY": "k", "IMMUNOSEP_DEMO_ENROLMENT_DAYS": "900"}
    assert Settings.from_env(env).demo_enrolment_days == 900.0
