"""The parameter type system and its rules, shared by the registry and the executor."""

import pytest
from nbp_common.params import check_definition, check_value, infer_definition


def rules_of(violations: list) -> list[tuple[str, str]]:
    return [(v.where, v.rule) for v in violations]


@pytest.mark.parametrize(
    ("param_type", "value"),
    [
        ("str", "x"),
        ("int", 3),
        ("float", 3),
        ("float", 2.5),
        ("bool", False),
        ("list", [1, "a"]),
        ("dict", {"a": 1}),
        ("date", "2024-02-29"),
        ("datetime", "2024-02-29T10:00:00+01:00"),
        ("datetime", "2024-02-29T10:00:00"),
    ],
)
def test_values_of_their_type_pass(param_type: str, value: object) -> None:
    assert check_value(param_type, None, value) == []


@pytest.mark.parametrize(
    ("param_type", "value"),
    [
        ("str", 1),
        ("int", True),
        ("int", 1.5),
        ("int", "1"),
        ("float", "1.0"),
        ("float", False),
        ("bool", 1),
        ("bool", "true"),
        ("list", {"a": 1}),
        ("dict", [1]),
        ("date", "2024-02-30"),
        ("date", "2024-02-29T10:00:00"),
        ("datetime", "yesterday"),
        ("datetime", 1700000000),
    ],
)
def test_values_of_another_type_break_the_type_rule(param_type: str, value: object) -> None:
    assert rules_of(check_value(param_type, None, value)) == [("", "type")]


def test_each_rule_is_checked() -> None:
    assert rules_of(check_value("int", {"min": 1, "max": 5}, 0)) == [("", "min")]
    assert rules_of(check_value("int", {"min": 1, "max": 5}, 6)) == [("", "max")]
    assert rules_of(check_value("str", {"min_length": 2}, "a")) == [("", "min_length")]
    assert rules_of(check_value("list", {"max_length": 1}, [1, 2])) == [("", "max_length")]
    assert rules_of(check_value("str", {"pattern": "[a-z]+"}, "abc1")) == [("", "pattern")]
    assert rules_of(check_value("str", {"choices": ["a", "b"]}, "c")) == [("", "choices")]
    assert rules_of(check_value("date", {"min": "2024-01-01"}, "2023-12-31")) == [("", "min")]
    assert check_value("float", {"choices": [0.5, 1]}, 1) == []
    assert check_value("datetime", {"max": "2024-01-01T00:00:00Z"}, "2023-12-31T23:59:59+00:00") == []


@pytest.mark.parametrize(
    ("param_type", "rules", "expected"),
    [
        ("int", {"min": 5, "max": 1}, [("min", "min_gt_max")]),
        ("str", {"min_length": 3, "max_length": 2}, [("min_length", "min_gt_max")]),
        ("str", {"pattern": "(unclosed"}, [("pattern", "invalid_regex")]),
        ("int", {"choices": [1, "two"]}, [("choices[1]", "rule_type")]),
        ("str", {"choices": []}, [("choices", "rule_type")]),
        ("bool", {"min": 0}, [("min", "rule_not_applicable")]),
        ("str", {"min": "a"}, [("min", "rule_not_applicable")]),
        ("int", {"pattern": "x"}, [("pattern", "rule_not_applicable")]),
        ("int", {"maximum": 3}, [("maximum", "unknown_rule")]),
        ("int", {"min": "1"}, [("min", "rule_type")]),
        ("list", {"min_length": -1}, [("min_length", "rule_type")]),
        ("date", {"min": "2024-13-01"}, [("min", "rule_type")]),
        ("complex", None, [("", "type")]),
    ],
)
def test_definitions_that_make_no_sense_are_named(param_type: str, rules: dict, expected: list) -> None:
    assert rules_of(check_definition(param_type, rules)) == expected


def test_sensible_definitions_pass() -> None:
    assert check_definition("int", {"min": 1, "max": 1, "choices": [1]}) == []
    assert check_definition("str", {"pattern": r"^\w+$", "min_length": 0, "max_length": 10}) == []
    assert check_definition("datetime", {"min": "2024-01-01T00:00:00Z", "max": "2025-01-01T00:00:00"}) == []


@pytest.mark.parametrize(
    ("annotation", "source", "comment", "expected"),
    [
        ("None", "2", "how many", ("int", 2, "how many")),
        ("str", "'north'", "the region", ("str", "north", "the region")),
        ("float", "1", "", ("float", 1.0, None)),
        ("None", "0.5", "", ("float", 0.5, None)),
        ("None", "True", "", ("bool", True, None)),
        ("None", "[1, 2]", "", ("list", [1, 2], None)),
        ("None", "(1, 2)", "", ("list", [1, 2], None)),
        ("None", "{'a': 1}", "", ("dict", {"a": 1}, None)),
        ("typing.List[int]", "[]", "", ("list", [], None)),
        ("Optional[int]", "None", "", ("int", None, None)),
        ("None", "None", "", ("str", None, None)),
        ("None", "date(2024, 1, 31)", "", ("date", "2024-01-31", None)),
        ("datetime", "datetime(2024, 1, 31, 12, 30)", "", ("datetime", "2024-01-31T12:30:00", None)),
        ("None", "os.environ['X']", "", ("str", None, None)),
        ("int", "'text'", "", ("int", None, None)),
        ("None", "float('nan')", "", ("str", None, None)),
    ],
)
def test_definitions_are_inferred_from_a_parameters_line(
    annotation: str, source: str, comment: str, expected: tuple[str, object, str | None]
) -> None:
    definition = infer_definition("x", annotation, source, comment)
    assert (definition["param_type"], definition["default_value"], definition["description"]) == expected
    assert definition["required"] is False
    # What inference proposes is always a definition the registry accepts.
    assert check_definition(definition["param_type"], None) == []
    if definition["default_value"] is not None:
        assert check_value(definition["param_type"], None, definition["default_value"]) == []
