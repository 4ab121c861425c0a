"""The path rule: relative paths as they are, the user's home normalised, everything else refused."""

import pytest
from nbp_common.errors import Forbidden, Invalid
from nbp_common.paths import PathRuleError, UserPath, owner_of, relative_to_owner, split_user_path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nb.ipynb", UserPath(None, "nb.ipynb")),
        ("reports/q3.ipynb", UserPath(None, "reports/q3.ipynb")),
        ("/home/alice/nb.ipynb", UserPath("alice", "nb.ipynb")),
        ("/home/alice/reports/q3.ipynb", UserPath("alice", "reports/q3.ipynb")),
        ("/home/a.b@c-d/x.ipynb", UserPath("a.b@c-d", "x.ipynb")),
    ],
)
def test_paths_split_into_whose_home_and_the_path_inside(value: str, expected: UserPath) -> None:
    assert split_user_path(value) == expected


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "path"),
        ("/etc/passwd", "relative_path"),
        ("/home", "relative_path"),
        ("/home/alice", "relative_path"),
        ("/home/../etc/x.ipynb", "relative_path"),
        ("/srv/home/alice/x.ipynb", "relative_path"),
        ("C:/x.ipynb", "relative_path"),
        ("a\\b.ipynb", "relative_path"),
        ("../bob/x.ipynb", "inside_user_folder"),
        ("a/../../x.ipynb", "inside_user_folder"),
        ("/home/alice/../bob/x.ipynb", "inside_user_folder"),
        ("/home/alice/", "inside_user_folder"),
        ("a//b.ipynb", "inside_user_folder"),
        ("./a.ipynb", "inside_user_folder"),
    ],
)
def test_paths_outside_the_rule_are_refused_naming_the_rule(value: str, rule: str) -> None:
    with pytest.raises(PathRuleError) as caught:
        split_user_path(value)
    assert caught.value.rule == rule


def test_other_absolute_paths_say_what_the_rule_is() -> None:
    with pytest.raises(Invalid) as caught:
        owner_of("/etc/nb.ipynb", "alice", "input_path")
    assert caught.value.errors is not None
    error = caught.value.errors[0]
    assert (error.field, error.rule) == ("input_path", "relative_path")
    assert "/home/<username>/" in error.message


def test_a_relative_path_belongs_to_the_default_owner() -> None:
    assert owner_of("x.ipynb", "alice", "file_path") == UserPath("alice", "x.ipynb")
    assert owner_of("/home/bob/x.ipynb", "alice", "file_path") == UserPath("bob", "x.ipynb")


def test_another_users_home_is_forbidden() -> None:
    assert relative_to_owner("/home/alice/a/b.ipynb", "alice", "file_path") == "a/b.ipynb"
    with pytest.raises(Forbidden) as caught:
        relative_to_owner("/home/bob/b.ipynb", "alice", "file_path")
    assert caught.value.errors is not None
    assert (caught.value.errors[0].field, caught.value.errors[0].rule) == ("file_path", "own_home")
