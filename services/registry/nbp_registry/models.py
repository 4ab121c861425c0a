"""The registry's tables, in its own schema ``registry``: the seed's tables and constraints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nbp_common.db import schema_metadata
from nbp_common.params import PARAM_TYPES
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA = "registry"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


NAME_LENGTH = 255
PATH_LENGTH = 1024
USERNAME_LENGTH = 255


class Notebook(Base):
    __tablename__ = "notebooks"
    __table_args__ = (
        UniqueConstraint("name", "username"),
        # Paths are relative to the owner's folder: two users may each have reports/q3.ipynb.
        UniqueConstraint("username", "file_path"),
        Index(None, "username"),
        # fastupdate off: the pending list would be merged by whichever insert fills it, a stall of
        # hundreds of milliseconds for that one request; notebooks are written rarely, read often.
        Index(None, "tags", postgresql_using="gin", postgresql_with={"fastupdate": "off"}),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    tags: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # The seed's column is called "metadata", a name the declarative base reserves for itself.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    parameters: Mapped[list[Parameter]] = relationship(
        back_populates="notebook",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Parameter.id",
        lazy="raise",
    )


class Parameter(Base):
    __tablename__ = "notebook_parameters"
    __table_args__ = (
        UniqueConstraint("notebook_id", "param_name"),
        CheckConstraint(
            "param_type IN (" + ", ".join(f"'{t}'" for t in PARAM_TYPES) + ")", name="param_type_known"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    notebook_id: Mapped[int] = mapped_column(ForeignKey(f"{SCHEMA}.notebooks.id", ondelete="CASCADE"))
    param_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    param_type: Mapped[str] = mapped_column(String(16))
    default_value: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    description: Mapped[str | None] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(Boolean, server_default="false")
    validation_rules: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    notebook: Mapped[Notebook] = relationship(back_populates="parameters", lazy="raise")
