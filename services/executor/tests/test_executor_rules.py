"""The executor's pure rules, without a database or a kernel: where a path may lead, which parameters a
run gets, and what happens to a run whose executor stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbp_common.errors import Forbidden, Invalid
from nbp_executor.intake import parameters, workspace
from nbp_executor.models import Job
from nbp_executor.queueing import jobs


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    (tmp_path / "alice" / "sub").mkdir(parents=True)
    (tmp_path / "bob").mkdir()
    (tmp_path / "alice" / "to-bob").symlink_to(tmp_path / "bob")
    (tmp_path / "alice" / "inside").symlink_to(tmp_path / "alice" / "sub")
    return tmp_path


def rules(error: Invalid) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in error.errors or []]


def test_a_path_inside_the_folder_resolves(folders: Path) -> None:
    resolved = workspace.resolve(folders, "alice", "sub/x.ipynb", "notebook_path")
    assert resolved.relative == "sub/x.ipynb"
    assert resolved.absolute == folders.resolve() / "alice" / "sub" / "x.ipynb"
    through_link = workspace.resolve(folders, "alice", "inside/x.ipynb", "notebook_path")
    assert through_link.absolute == folders.resolve() / "alice" / "sub" / "x.ipynb"


@pytest.mark.parametrize(
    ("path", "rule"),
    [("../bob/x.ipynb", "inside_user_folder"), ("/etc/passwd", "relative_path"), ("", "path")],
)
def test_a_path_leading_out_lexically_is_a_422(folders: Path, path: str, rule: str) -> None:
    with pytest.raises(Invalid) as caught:
        workspace.resolve(folders, "alice", path, "notebook_path")
    assert rules(caught.value) == [("notebook_path", rule)]


def test_a_symlink_leading_out_is_a_403(folders: Path) -> None:
    with pytest.raises(Forbidden, match="leads outside alice's folder"):
        workspace.resolve(folders, "alice", "to-bob/x.ipynb", "notebook_path")


def test_a_username_that_is_not_one_is_refused(folders: Path) -> None:
    with pytest.raises(Invalid) as caught:
        workspace.user_folder(folders, "../bob")
    assert rules(caught.value) == [("username", "pattern")]


DEFINITIONS: list[dict[str, Any]] = [
    {"param_name": "alpha", "param_type": "float", "default_value": 0.5, "validation_rules": {"max": 1}},
    {"param_name": "label", "param_type": "str", "required": True},
    {"param_name": "note", "param_type": "str"},
]


def test_defaults_are_overlaid_by_the_request() -> None:
    assert parameters.resolve(DEFINITIONS, {"label": "x"}) == {"alpha": 0.5, "label": "x"}
    assert parameters.resolve(DEFINITIONS, {"label": "x", "alpha": 0.9}) == {"alpha": 0.9, "label": "x"}


def test_every_bad_parameter_is_named_with_its_rule() -> None:
    with pytest.raises(Invalid) as caught:
        parameters.resolve(DEFINITIONS, {"alpha": 2, "extra": 1})
    assert sorted(rules(caught.value)) == [
        ("parameters.alpha", "max"),
        ("parameters.extra", "unknown"),
        ("parameters.label", "required"),
    ]


def test_an_unregistered_notebook_takes_identifiers_only() -> None:
    assert parameters.resolve(None, {"x": 1}) == {"x": 1}
    with pytest.raises(Invalid) as caught:
        parameters.resolve(None, {"not a name": 1, "class": 2})
    assert sorted(rules(caught.value)) == [
        ("parameters.class", "identifier"),
        ("parameters.not a name", "identifier"),
    ]


def running(attempt: int, max_attempts: int, cancel: bool = False) -> Job:
    return Job(
        id=1,
        status="running",
        attempt=attempt,
        max_attempts=max_attempts,
        cancel_requested=cancel,
        worker="host:1:0",
        lease_owner="host:1:0",
        cells_done=2,
        current_cell=3,
    )


def test_a_lost_run_with_attempts_left_is_queued_again() -> None:
    job = running(attempt=1, max_attempts=2)
    jobs.requeue_or_fail(job, jobs.EXECUTOR_LOST)
    assert (job.status, job.attempt, job.worker, job.lease_owner, job.cells_done) == (
        "queued",
        2,
        None,
        None,
        0,
    )


def test_a_lost_run_without_attempts_left_fails() -> None:
    job = running(attempt=2, max_attempts=2)
    jobs.requeue_or_fail(job, jobs.EXECUTOR_LOST)
    assert (job.status, job.error_message) == ("failed", jobs.EXECUTOR_LOST)
    assert job.completed_at is not None


def test_a_lost_run_that_was_being_cancelled_is_cancelled() -> None:
    job = running(attempt=1, max_attempts=3, cancel=True)
    jobs.requeue_or_fail(job, jobs.EXECUTOR_LOST)
    assert job.status == "cancelled"
