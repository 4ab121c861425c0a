"""The `kube_control_plane` fixture (root conftest.py) that tests of Kubernetes code use."""

import socket
import ssl

import httpx
import pytest

from conftest import ControlPlane


def test_the_api_server_answers_inside_its_namespace(kube_control_plane: ControlPlane) -> None:
    context = ssl.create_default_context(cafile=str(kube_control_plane.ca_file))
    headers = {"Authorization": f"Bearer {kube_control_plane.token}"}
    with kube_control_plane.inside(), httpx.Client(verify=context, headers=headers) as client:
        assert client.get(f"{kube_control_plane.server}/readyz").status_code == 200
        default = client.get(f"{kube_control_plane.server}/api/v1/namespaces/default/serviceaccounts/default")
        assert default.status_code == 200, "the controller-manager runs (it creates this account)"


def test_service_ips_are_unreachable_inside(kube_control_plane: ControlPlane) -> None:
    """THE RULE: from inside, 10.x (Service IPs) fails at once instead of leaving the machine."""
    with kube_control_plane.inside(), pytest.raises(OSError, match="unreachable"):
        socket.create_connection(("10.0.0.1", 443), timeout=5)


def test_commands_run_inside_with_the_kubeconfig(kube_control_plane: ControlPlane) -> None:
    proc = kube_control_plane.run("sh", "-c", 'ip -o link show && echo "$KUBECONFIG"')
    assert proc.returncode == 0, proc.stderr
    links = [line.split(":")[1].strip() for line in proc.stdout.splitlines() if ": " in line]
    assert links == ["lo"]
    assert proc.stdout.strip().endswith("kubeconfig")
