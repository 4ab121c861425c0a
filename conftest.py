"""Fixtures for every test in the repository: a real PostgreSQL (see ``tests.support.common``), an
in-process client of each service over a database of the test's own, and a Kubernetes control plane."""

import ctypes
import os
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nbp_common.app import ServiceSpec
from nbp_history.main import SPEC as HISTORY
from nbp_platform import SERVICES
from nbp_registry.main import SPEC as REGISTRY
from sqlalchemy.engine import URL

from tests.support.common import app_client, settings_for

# The executor's fixtures (a served platform, notebook files) and Superset's (the real Superset, a
# browser) are plugins, like the database ones.
pytest_plugins = ["tests.support.common", "tests.support.executor", "tests.support.superset"]


@pytest.fixture(scope="session")
def service_specs() -> Sequence[ServiceSpec]:
    return SERVICES


@pytest.fixture
async def registry(database_url: URL) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client([REGISTRY], settings_for(database_url)) as client:
        yield client


@pytest.fixture
async def history(database_url: URL) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client([HISTORY], settings_for(database_url)) as client:
        yield client


# --- a Kubernetes control plane (scripts/cluster/cluster.sh; `make cluster` is the same for people) ---------

CLONE_NEWNET = 0x40000000
CLUSTER_SCRIPT = Path(__file__).parent / "scripts" / "cluster" / "cluster.sh"


@dataclass(frozen=True)
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on 127.0.0.1 inside the network namespace `netns`,
    which has only loopback. No kubelet: Pods are admitted and stay Pending. Talk to it only from inside
    (`inside()` or `run()`): the API server's port is not reachable from the machine's own namespace."""

    netns: str
    kubeconfig: Path
    server: str
    ca_file: Path
    token: str

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Move the calling thread into the namespace: sockets it opens meanwhile (and threads it starts)
        belong to the namespace, where 127.0.0.1 is the control plane's loopback and 10.x is unreachable."""
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.netns}")
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back into the test's own network namespace")
            os.close(own)
            os.close(target)

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace with KUBECONFIG set (e.g. helm)."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A fresh control plane for the test session (about 5 s to start), stopped at its end. Needs the
    binaries `make cluster-tools` builds (`make test` does, and sets NBP_KUBE_BIN)."""
    binaries = os.environ.get("NBP_KUBE_BIN", "")
    if not (binaries and Path(binaries, "kube-apiserver").is_file()):
        pytest.fail(
            "NBP_KUBE_BIN names no built kube-apiserver: run `make cluster-tools` (or run via `make test`)"
        )
    state = tmp_path_factory.mktemp("kube-control-plane")
    netns = f"nbp-pytest-{os.getpid()}"
    env = {**os.environ, "KUBE_BIN": binaries, "NBP_CLUSTER_STATE": str(state), "NBP_CLUSTER_NETNS": netns}
    started = subprocess.run(
        [str(CLUSTER_SCRIPT), "start"], env=env, capture_output=True, text=True, check=False, timeout=300
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"the control plane did not start:\n{started.stdout}\n{started.stderr}")
        yield ControlPlane(
            netns=netns,
            kubeconfig=state / "kubeconfig",
            server="https://127.0.0.1:6443",
            ca_file=state / "pki" / "ca.crt",
            token=(state / "pki" / "admin.token").read_text().strip(),
        )
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop"], env=env, capture_output=True, check=False, timeout=120)
