"""The whole platform in one process, for development: the same paths as the ingress."""

from __future__ import annotations

from nbp_common.app import ServiceSpec
from nbp_executor.main import SPEC as EXECUTOR
from nbp_history.main import SPEC as HISTORY
from nbp_registry.main import SPEC as REGISTRY

SERVICES: tuple[ServiceSpec, ...] = (REGISTRY, HISTORY, EXECUTOR)
