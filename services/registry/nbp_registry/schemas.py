"""The registry's API models: what callers send and what they get back (the seed's field names)."""

from __future__ import annotations

import keyword
from datetime import datetime
from typing import Annotated, Any

from nbp_common.api import NoNul, json_storable
from nbp_common.params import ParamTypeName
from nbp_common.paths import valid_path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from nbp_registry.models import NAME_LENGTH, PATH_LENGTH, USERNAME_LENGTH

MAX_TAGS = 50
MAX_PARAMETERS = 200


def _notebook_path(value: str) -> str:
    # The path rule's lexical checks (whose home an absolute path names is the service's to check,
    # against the notebook's owner); the file itself the executor resolves, symlinks included.
    valid_path(value)
    if not value.endswith(".ipynb"):
        raise ValueError("must name a notebook file ending in .ipynb")
    return value


def _identifier(value: str) -> str:
    # Papermill injects each parameter as a Python assignment, so the name must be one.
    if not value.isidentifier() or keyword.iskeyword(value):
        raise ValueError("must be a valid Python identifier that is not a keyword")
    return value


def _strict_flag(value: Any) -> Any:
    # The seed stored `required` as 0/1; accept those and booleans, nothing looser ("yes", "on", 2).
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    return value


Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, examples=["Quarterly forecast"]), NoNul]
Description = Annotated[str, Field(max_length=10_000), NoNul]
Username = Annotated[
    str,
    Field(
        min_length=1,
        max_length=USERNAME_LENGTH,
        pattern=r"^\w[\w.@-]*$",
        examples=["alice"],
        description="Letters, digits and . _ @ -",
    ),
    NoNul,
]
NotebookPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=PATH_LENGTH,
        examples=["forecasts/quarterly.ipynb"],
        description="Relative to the user's workspace folder, or absolute under the owner's home "
        "(/home/<username>/...), which is stored relative.",
    ),
    NoNul,
    AfterValidator(_notebook_path),
]
Tag = Annotated[str, Field(min_length=1, max_length=64), NoNul]
Metadata = Annotated[dict[str, Any], AfterValidator(json_storable)]
JsonValue = Annotated[Any, AfterValidator(json_storable)]
ParamName = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), AfterValidator(_identifier), NoNul]
Flag = Annotated[bool, BeforeValidator(_strict_flag), Field(strict=True)]
Rules = Annotated[
    dict[str, Any],
    AfterValidator(json_storable),
    Field(
        examples=[{"min": 0, "max": 10}], description="Keys: min max min_length max_length pattern choices"
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterFields(Strict):
    param_name: ParamName
    param_type: ParamTypeName = "str"
    default_value: JsonValue | None = None
    description: Description | None = None
    required: Flag = False
    validation_rules: Rules | None = None


class ParameterCreate(ParameterFields):
    notebook_id: int = Field(ge=1, le=2**63 - 1)


class ParameterUpdate(Strict):
    param_name: ParamName | None = None
    param_type: ParamTypeName | None = None
    default_value: JsonValue | None = None
    description: Description | None = None
    required: Flag | None = None
    validation_rules: Rules | None = None


class ParameterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    notebook_id: int
    param_name: str
    param_type: str
    default_value: Any | None
    description: str | None
    required: bool
    validation_rules: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class NotebookCreate(Strict):
    name: Name
    description: Description | None = None
    file_path: NotebookPath
    username: Username
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    metadata: Metadata = Field(default_factory=dict)


class NotebookUpdate(Strict):
    name: Name | None = None
    description: Description | None = None
    file_path: NotebookPath | None = None
    username: Username | None = None
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    metadata: Metadata | None = None


class NotebookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: int
    name: str
    description: str | None
    file_path: str
    username: str
    tags: list[str]
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    created_at: datetime
    updated_at: datetime


class NotebookDetail(NotebookOut):
    parameters: list[ParameterOut]


class BulkParameterItem(ParameterFields):
    """An item of a bulk create; the prototype's items carry the notebook's id, which must be the path's."""

    notebook_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


BulkParameters = Annotated[list[BulkParameterItem], Field(min_length=1, max_length=MAX_PARAMETERS)]
