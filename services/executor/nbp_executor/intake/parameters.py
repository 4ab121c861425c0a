"""A run's parameters: the registered defaults overlaid by the request, checked before anything is
queued with the same type system and rules the registry uses (``nbp_common.params``)."""

from __future__ import annotations

import json
import keyword
from collections.abc import Mapping, Sequence
from typing import Any

from nbp_common.errors import FieldError, Invalid, PayloadTooLarge
from nbp_common.params import check_value


def check_size(parameters: Mapping[str, Any], limit: int) -> None:
    size = len(json.dumps(parameters, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise PayloadTooLarge(
            f"parameters are {size} bytes once serialised; the limit is {limit} bytes "
            "(pass large inputs as a file in the workspace and its path as the parameter)"
        )


def resolve(definitions: Sequence[Mapping[str, Any]] | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a run gets, or a 422 naming every bad one (``parameters.<name>``) and its rule.

    ``definitions`` is None for a notebook that is not registered: its values are passed as they are,
    but each name must still be a Python identifier for Papermill to inject it.
    """
    errors: list[FieldError] = []
    if definitions is None:
        for name in given:
            if not name.isidentifier() or keyword.iskeyword(name):
                errors.append(
                    FieldError(
                        field=f"parameters.{name}",
                        rule="identifier",
                        message="must be a Python identifier that is not a keyword",
                    )
                )
        if errors:
            raise Invalid.fields(errors)
        return dict(given)

    by_name = {d["param_name"]: d for d in definitions}
    for name in given:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            errors.append(
                FieldError(
                    field=f"parameters.{name}",
                    rule="unknown",
                    message=f"is not a parameter of this notebook (its parameters: {known})",
                )
            )
    values: dict[str, Any] = {}
    for name, definition in by_name.items():
        if name in given:
            value = given[name]
        elif definition.get("default_value") is not None:
            value = definition["default_value"]
        elif definition.get("required"):
            errors.append(
                FieldError(
                    field=f"parameters.{name}",
                    rule="required",
                    message="is required and has no default",
                )
            )
            continue
        else:
            continue  # optional without a default: the notebook's own value stays
        for violation in check_value(definition["param_type"], definition.get("validation_rules"), value):
            errors.append(
                FieldError(field=f"parameters.{name}", rule=violation.rule, message=violation.message)
            )
        values[name] = value
    if errors:
        raise Invalid.fields(errors)
    return values
