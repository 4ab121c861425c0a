"""The ``kubernetes`` runner's settings (prefix ``NBP_EXECUTOR_K8S_``): what the chart passes to the
executor. A run's pod gets the default requests and limits; a run may ask for more CPU or memory up to
the admin's maximum (``RunResources``)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where a pod finds the namespace it runs in (the executor's own, by default the runs' too).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIXES: dict[str | None, Decimal] = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}


def quantity(value: str) -> Decimal:
    """A Kubernetes quantity ("500m", "2", "4Gi") as a number, or ValueError saying what is wrong.
    (Its decimal-suffix form; the client library is not imported for this: it takes seconds.)"""
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


class KubernetesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_EXECUTOR_K8S_", extra="ignore")

    # The runs' namespace (default: the executor's own, from its service account's namespace file).
    namespace: str | None = Field(default=None, pattern=DNS_LABEL, max_length=63)
    # A kubeconfig file; none: the in-cluster configuration (the executor's service account).
    kubeconfig: Path | None = None
    # The notebook image: Python with papermill, ipykernel, nbp-kernel and the users' libraries.
    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # The shared workspace volume (JupyterHub's users' homes): a run mounts only its owner's subPath.
    workspace_claim: str | None = Field(default=None, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    # The release: the run pods' `app.kubernetes.io/instance` label (the NetworkPolicy selects it).
    instance: str = Field(default="nbp", pattern=DNS_LABEL, max_length=53)
    # The user the notebook runs as (non-root; the single-user servers' uid, so files stay theirs).
    run_as_user: int = Field(default=1000, ge=1)
    run_as_group: int = Field(default=100, ge=0)
    cpu_request: str = "250m"
    cpu_limit: str = "2"
    memory_request: str = "512Mi"
    memory_limit: str = "4Gi"
    # The most CPU and memory a run may ask for (an admin's setting; more is refused with 422).
    max_cpu: str = "4"
    max_memory: str = "16Gi"
    tmp_size: str = "1Gi"  # the pod's emptyDir /tmp (the root filesystem is read-only)
    # How often a run's pod and its output notebook (the progress) are read.
    poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator(
        "cpu_request", "cpu_limit", "memory_request", "memory_limit", "max_cpu", "max_memory", "tmp_size"
    )
    @classmethod
    def _quantity(cls, value: str) -> str:
        quantity(value)
        return value

    def resolved_namespace(self) -> str:
        if self.namespace is not None:
            return self.namespace
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        except OSError as exc:
            raise ValueError(
                f"NBP_EXECUTOR_K8S_NAMESPACE is not set and {SERVICE_ACCOUNT_NAMESPACE} cannot be read "
                "(the executor is not in a pod): set the namespace its runs go to"
            ) from exc
