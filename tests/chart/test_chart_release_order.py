# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""helmfile.yaml orders the releases; kind/cluster.yaml gives the ingress its ports. (Neither can run
here; their structure is what can be checked.)"""

from __future__ import annotations

from typing import Any

import yaml

from conftest import REPO


def _helmfile() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "helmfile.yaml").read_text())
    return data


def test_operator_and_ingress_come_before_the_platform() -> None:
    releases = {r["name"]: r for r in _helmfile()["releases"]}
    assert set(releases) == {"cnpg", "ingress-nginx", "nbp"}
    assert releases["cnpg"]["chart"] == "cnpg/cloudnative-pg"
    assert releases["cnpg"]["namespace"] == "cnpg-system"
    assert releases["nbp"]["chart"] == "./charts/notebook-platform"
    assert releases["nbp"]["needs"] == ["cnpg-system/cnpg", "ingress-nginx/ingress-nginx"]
    for release in releases.values():
        if not release["chart"].startswith("./"):
            assert release["version"], f"{release['name']} is pinned"


def test_environments_name_tested_values() -> None:
    environments = _helmfile()["environments"]
    assert set(environments) == {"kind", "production"}
    for name, env in environments.items():
        (path,) = env["values"]
        values = yaml.safe_load((REPO / path).read_text())
        platform = REPO / values["platformValues"]
        assert platform.parent == REPO / "charts" / "notebook-platform" / "ci", name
        assert platform.is_file(), f"{name}: {platform} (rendered and checked as a ci variant)"
        assert isinstance(values["ingressNginx"]["enabled"], bool)
    kind = yaml.safe_load((REPO / environments["kind"]["values"][0]).read_text())
    assert kind["ingressNginx"]["hostPorts"] is True


def test_kind_maps_the_ingress_ports() -> None:
    cluster = yaml.safe_load((REPO / "kind" / "cluster.yaml").read_text())
    (node,) = cluster["nodes"]
    ports = {(m["containerPort"], m["hostPort"]) for m in node["extraPortMappings"]}
    assert ports == {(80, 80), (443, 443)}
    assert 'node-labels: "ingress-ready=true"' in node["kubeadmConfigPatches"][0]
    ingress = (REPO / "charts" / "environments" / "ingress-nginx.yaml.gotmpl").read_text()
    assert 'ingress-ready: "true"' in ingress
