"""The allocation policy (components.blinding) tested directly: labels per visibility, the
guards, the refusal to load the arm for blinded roles, and the DSMB group coding stored with
the data (stable when the session key rotates; seeded from the legacy derivation so an
upgraded deployment keeps its codes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import blinding
from components.server.auth import ArmVisibility
from components.server.context import bare_app, engine
from core import db, io
from core import repository as repo
from core.vocab import Arm
from settings import Settings

NONE, CODED, FULL = ArmVisibility.NONE, ArmVisibility.CODED, ArmVisibility.FULL


def test_pol001_groups_per_visibility():
    assert blinding.groups_for(NONE).labels == ("All patients",)
    assert not blinding.groups_for(NONE).compared
    assert blinding.groups_for(CODED).labels == ("Group A", "Group B")
    assert blinding.groups_for(CODED).difference_words == "Group A − Group B"
    full = blinding.groups_for(FULL)
    assert (full.treated, full.control) == ("Precision immunotherapy", "Placebo")


def test_pol002_guards_deny_blinded_roles_only():
    for guard in (
        blinding.may_compare_groups,
        blinding.may_see_post_baseline_biomarkers,
        blinding.may_list_aesi_patients,
    ):
        assert (guard(NONE), guard(CODED), guard(FULL)) == (False, True, True)


@pytest.mark.parametrize("group_a", [Arm.PRECISION.value, Arm.PLACEBO.value])
def test_pol003_arm_labels_follow_the_stored_coding(group_a):
    labels = blinding.arm_labels(CODED, group_a)
    other = ({a.value for a in Arm} - {group_a}).pop()
    assert labels == {group_a: "Group A", other: "Group B"}
    assert blinding.arm_labels(NONE, group_a) is None
    assert blinding.arm_labels(FULL, group_a)[Arm.PLACEBO.value] == "Placebo"
    with pytest.raises(ValueError, match="names no arm"):
        blinding.arm_labels(CODED, "Group A")


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    eng = db.make_engine(url)
    io.import_tables(eng, io.template_tables(), user="test")
    eng.dispose()
    return url


def _coding(url: str, tmp_path: Path, secret: str) -> dict[str, str]:
    s = Settings(database_url=url, cache_dir=str(tmp_path / f"cache-{secret}"), secret_key=secret)
    with bare_app(s).app_context():
        groups = blinding.load_groups("v1", CODED)
        arms = repo.load_arms(engine())
    merged = groups.merge(arms, on="patient_id")
    return dict(zip(merged["arm"], merged["group"], strict=False))


def _secret_with(precision_is_a: bool) -> str:
    return next(
        f"key-{i}"
        for i in range(100)
        if blinding.legacy_precision_is_group_a(f"key-{i}") is precision_is_a
    )


def test_pol004_coding_is_stored_once_and_survives_a_key_rotation(tmp_path):
    url = _database(tmp_path)
    first_key, rotated_key = _secret_with(True), _secret_with(False)
    # no stored coding yet: seeded from the legacy derivation, so today's codes stay the same
    assert _coding(url, tmp_path, first_key) == {"precision": "Group A", "placebo": "Group B"}
    eng = db.make_engine(url)
    assert repo.load_trial_key(eng, blinding.GROUP_CODING_KEY) == "precision"
    eng.dispose()
    # the session key rotates (its legacy derivation would now say placebo = Group A) ...
    assert _coding(url, tmp_path, rotated_key) == {"precision": "Group A", "placebo": "Group B"}


def test_pol005_a_database_coded_by_an_older_deployment_keeps_its_codes(tmp_path):
    url = _database(tmp_path)
    key = _secret_with(False)  # this deployment's legacy derivation: placebo is Group A
    assert _coding(url, tmp_path, key) == {"precision": "Group B", "placebo": "Group A"}


def test_pol006_blinded_roles_never_load_the_arm(tmp_path, monkeypatch):
    url = _database(tmp_path)
    calls = []
    monkeypatch.setattr(blinding, "load_arms", lambda *a: calls.append(a))
    s = Settings(database_url=url, cache_dir=str(tmp_path / "c"), secret_key="k")
    with bare_app(s).app_context(), pytest.raises(PermissionError, match="never loaded"):
        blinding.load_groups("v1", NONE)
    assert calls == []
