"""Fixtures for every test in the repository: a real PostgreSQL (see ``nbp_common.testing``)."""

from collections.abc import Sequence

import pytest
from nbp_common.app import ServiceSpec
from nbp_platform import SERVICES

pytest_plugins = ["nbp_common.testing"]


@pytest.fixture(scope="session")
def service_specs() -> Sequence[ServiceSpec]:
    return SERVICES
