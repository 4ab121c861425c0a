"""Typed notebook parameters: the type system and the rules, shared by the registry (which checks
definitions and defaults) and the executor (which checks each run's values before queueing it).

Values travel as JSON: ``str int float bool list dict`` are their JSON counterparts, ``date`` and
``datetime`` are ISO 8601 strings. ``pattern`` must match the whole string.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

ParamType = Literal["str", "int", "float", "bool", "list", "dict", "date", "datetime"]
PARAM_TYPES: tuple[str, ...] = get_args(ParamType)
# The prototype's type names, accepted on the way in and stored (and answered) as ours.
PROTOTYPE_TYPE_NAMES: dict[str, ParamType] = {
    "string": "str",
    "integer": "int",
    "float": "float",
    "boolean": "bool",
    "json": "dict",
    "list": "list",
}
RULE_KEYS = ("min", "max", "min_length", "max_length", "pattern", "choices")

RULES_BY_TYPE: dict[str, frozenset[str]] = {
    "str": frozenset({"min_length", "max_length", "pattern", "choices"}),
    "int": frozenset({"min", "max", "choices"}),
    "float": frozenset({"min", "max", "choices"}),
    "bool": frozenset(),
    "list": frozenset({"min_length", "max_length"}),
    "dict": frozenset({"min_length", "max_length"}),
    "date": frozenset({"min", "max", "choices"}),
    "datetime": frozenset({"min", "max"}),
}

_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a JSON array",
    "dict": "a JSON object",
    "date": "an ISO 8601 date (YYYY-MM-DD)",
    "datetime": "an ISO 8601 date-time",
}


def canonical_type(name: Any) -> Any:
    """Our name of a parameter type given by either name; an unknown name is refused naming both sets."""
    if name in PARAM_TYPES:
        return name
    if isinstance(name, str) and name in PROTOTYPE_TYPE_NAMES:
        return PROTOTYPE_TYPE_NAMES[name]
    raise PydanticCustomError(
        "type_name",
        "must be one of {ours} (or the prototype's names {theirs})",
        {"ours": " ".join(PARAM_TYPES), "theirs": " ".join(PROTOTYPE_TYPE_NAMES)},
    )


# A parameter type as the API takes it: either name, always stored and answered in our form.
ParamTypeName = Annotated[ParamType, BeforeValidator(canonical_type)]


class Violation(NamedTuple):
    """A broken rule: ``where`` is the rule key (or "" for the value itself), ``rule`` the rule's name."""

    where: str
    rule: str
    message: str


class _NotOfType(ValueError):
    pass


def parse(param_type: str, value: Any) -> Any:
    """The value as a Python object of ``param_type``, for comparisons; raises ``ValueError`` otherwise."""
    ok: bool
    match param_type:
        case "str":
            ok = isinstance(value, str)
        case "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        case "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        case "bool":
            ok = isinstance(value, bool)
        case "list":
            ok = isinstance(value, list)
        case "dict":
            ok = isinstance(value, dict)
        case "date":
            if isinstance(value, str) and len(value) == 10:
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    pass
            ok = False
        case "datetime":
            if isinstance(value, str) and len(value) >= 16:
                try:
                    parsed = datetime.fromisoformat(value)
                except ValueError:
                    pass
                else:
                    # Aware and naive date-times cannot be compared; the naive ones are read as UTC.
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            ok = False
        case _:
            raise _NotOfType(f"unknown type {param_type!r}")
    if not ok:
        raise _NotOfType(f"must be {_TYPE_WORDS[param_type]}")
    return value


def check_definition(param_type: str, rules: Mapping[str, Any] | None) -> list[Violation]:
    """Rules that make no sense for ``param_type``: unknown, inapplicable, malformed or contradictory."""
    if param_type not in PARAM_TYPES:
        return [Violation("", "type", f"must be one of {', '.join(PARAM_TYPES)}")]
    rules = rules or {}
    problems: list[Violation] = []
    applicable = RULES_BY_TYPE[param_type]
    for key in rules:
        if key not in RULE_KEYS:
            problems.append(
                Violation(key, "unknown_rule", f"unknown rule; the rules are {', '.join(RULE_KEYS)}")
            )
        elif key not in applicable:
            allowed = ", ".join(sorted(applicable)) or "none"
            problems.append(
                Violation(
                    key, "rule_not_applicable", f"does not apply to type {param_type} (it takes: {allowed})"
                )
            )
    if problems:
        return problems

    bounds: dict[str, Any] = {}
    for key in ("min", "max"):
        if key in rules:
            try:
                bounds[key] = parse(param_type, rules[key])
            except ValueError as exc:
                problems.append(Violation(key, "rule_type", f"{exc} (a {key} bound of a {param_type})"))
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        problems.append(Violation("min", "min_gt_max", "min is greater than max"))

    lengths: dict[str, int] = {}
    for key in ("min_length", "max_length"):
        if key in rules:
            length = rules[key]
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                problems.append(Violation(key, "rule_type", "must be a non-negative integer"))
            else:
                lengths[key] = length
    if len(lengths) == 2 and lengths["min_length"] > lengths["max_length"]:
        problems.append(Violation("min_length", "min_gt_max", "min_length is greater than max_length"))

    if "pattern" in rules:
        pattern = rules["pattern"]
        if not isinstance(pattern, str) or len(pattern) > 1000:
            problems.append(
                Violation("pattern", "rule_type", "must be a regular expression of at most 1000 characters")
            )
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Violation("pattern", "invalid_regex", f"does not compile: {exc}"))

    if "choices" in rules:
        choices = rules["choices"]
        if not isinstance(choices, list) or not choices:
            problems.append(Violation("choices", "rule_type", "must be a non-empty list"))
        else:
            for index, choice in enumerate(choices):
                try:
                    parse(param_type, choice)
                except ValueError as exc:
                    problems.append(
                        Violation(f"choices[{index}]", "rule_type", f"{exc} (a choice of a {param_type})")
                    )
    return problems


def check_value(param_type: str, rules: Mapping[str, Any] | None, value: Any) -> list[Violation]:
    """What is wrong with ``value`` as a parameter of ``param_type`` under ``rules`` (empty: nothing)."""
    try:
        parsed = parse(param_type, value)
    except ValueError as exc:
        return [Violation("", "type", str(exc))]
    rules = rules or {}
    problems: list[Violation] = []
    if "min" in rules and parsed < parse(param_type, rules["min"]):
        problems.append(Violation("", "min", f"must be at least {rules['min']}"))
    if "max" in rules and parsed > parse(param_type, rules["max"]):
        problems.append(Violation("", "max", f"must be at most {rules['max']}"))
    if "min_length" in rules and len(parsed) < rules["min_length"]:
        problems.append(
            Violation("", "min_length", f"must have at least {rules['min_length']} items or characters")
        )
    if "max_length" in rules and len(parsed) > rules["max_length"]:
        problems.append(
            Violation("", "max_length", f"must have at most {rules['max_length']} items or characters")
        )
    if "pattern" in rules and re.fullmatch(rules["pattern"], parsed) is None:
        problems.append(Violation("", "pattern", f"must match the pattern {rules['pattern']!r}"))
    if "choices" in rules and parsed not in [parse(param_type, choice) for choice in rules["choices"]]:
        problems.append(Violation("", "choices", f"must be one of {rules['choices']}"))
    return problems


# Inference: a notebook's `parameters` cell, as Papermill's inspection reads it (name, annotation, the
# default's source text, the line's comment), turned into a definition the registry stores.

_ANNOTATION_TYPES: dict[str, ParamType] = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "list": "list",
    "tuple": "list",
    "dict": "dict",
    "date": "date",
    "datetime": "datetime",
}
_DATE_CALL = re.compile(r"^(?:datetime\.)?(date|datetime)\(\s*(\d+(?:\s*,\s*\d+){2,6})\s*\)$")


def _annotation_type(annotation: str | None) -> ParamType | None:
    """``int``, ``typing.List[int]``, ``Optional[float]``, ``dict[str, int]`` ... as our type, if any."""
    if not annotation or annotation == "None":
        return None
    text = annotation.replace("typing.", "").replace("datetime.", "").strip()
    optional = re.fullmatch(r"Optional\[(.+)\]", text)
    if optional:
        text = optional.group(1)
    head = text.split("[", 1)[0].strip().lower()
    return _ANNOTATION_TYPES.get(head)


def _literal(source: str) -> tuple[bool, Any]:
    """The default's value when it is a literal (or ``date(...)``/``datetime(...)`` of numbers)."""
    try:
        return True, ast.literal_eval(source)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    call = _DATE_CALL.fullmatch(source.strip())
    if call:
        numbers = [int(n) for n in call.group(2).split(",")]
        try:
            value = date(*numbers[:3]) if call.group(1) == "date" else datetime(*numbers)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False, None
        return True, value
    return False, None


def _value_type(value: Any) -> ParamType | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return None


def _as_json(param_type: str, value: Any) -> Any:
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if param_type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def infer_definition(
    name: str, annotation: str | None, default_source: str, comment: str | None
) -> dict[str, Any]:
    """A parameter definition from one line of a `parameters` cell: the type from the annotation, else
    from the default's value (``str`` when neither says); the default when it is a literal of that type
    (else none); the line's ``# comment`` as the description. A cell's parameters all have values, so
    none is required."""
    literal, value = _literal(default_source)
    param_type = _annotation_type(annotation) or (_value_type(value) if literal else None) or "str"
    default = _as_json(param_type, value) if literal and value is not None else None
    if default is not None:
        try:
            json.dumps(default, allow_nan=False)
        except (TypeError, ValueError):
            default = None
    if default is not None and check_value(param_type, None, default):
        default = None  # the value does not fit the annotation: keep the type, leave the default out
    return {
        "param_name": name,
        "param_type": param_type,
        "default_value": default,
        "description": comment.strip() if comment and comment.strip() else None,
        "required": False,
        "validation_rules": None,
    }
