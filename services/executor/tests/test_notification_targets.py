"""The webhook address rule on its own: only public addresses unless a network is allowed, checked on
the address a name resolves to, and a delivery aimed at the address it checked."""

from __future__ import annotations

import ipaddress

import pytest
from nbp_executor.notifications.targets import RefusedAddress, allowed, pinned, resolve

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not allowed(ipaddress.ip_address(address), ())


def test_public_addresses_and_allowed_networks_pass() -> None:
    assert allowed(ipaddress.ip_address("93.184.215.14"), ())
    assert allowed(ipaddress.ip_address("2606:4700::1111"), ())
    assert allowed(ipaddress.ip_address("127.0.0.5"), LOOPBACK)
    assert not allowed(ipaddress.ip_address("10.0.0.1"), LOOPBACK)


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(RefusedAddress, match="NBP_NOTIFY_WEBHOOK_ALLOWED_NETWORKS"):
        await resolve("localhost", 80, ())
    with pytest.raises(RefusedAddress):
        await resolve("app.localhost", 80, ())
    assert await resolve("localhost", 80, LOOPBACK) == [ipaddress.ip_address("127.0.0.1")]


async def test_a_delivery_connects_to_the_address_it_checked() -> None:
    with pytest.raises(RefusedAddress):
        await pinned("http://localhost:8080/hook?token=s", ())
    url, headers, extensions = await pinned("http://localhost:8080/hook?token=s", LOOPBACK)
    assert str(url) == "http://127.0.0.1:8080/hook?token=s"
    assert headers == {"Host": "localhost:8080"}
    assert extensions == {}
    url, headers, extensions = await pinned("https://localhost/h", LOOPBACK)
    assert (url.host, headers, extensions) == (
        "127.0.0.1",
        {"Host": "localhost"},
        {"sni_hostname": "localhost"},
    )
