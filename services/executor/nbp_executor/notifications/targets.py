"""Notification targets: what a webhook URL and an e-mail address must be, and what of a URL is shown.

A webhook is a request the platform makes from inside its own network to an address a user chose, so
it may reach only public addresses (no loopback, private, link-local -- the cloud metadata service --,
shared, multicast or reserved one), unless an administrator allows networks with
``NBP_NOTIFY_WEBHOOK_ALLOWED_NETWORKS``. The rule is checked when a rule is created (an address
literal, or every address a name resolves to: 422 ``url``/``public_address``) and again at every
delivery, which connects to the very address it checked (a name that resolves differently later --
DNS rebinding -- cannot lead it elsewhere).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx
from nbp_common.errors import Invalid

from nbp_executor.notifications.settings import NotifySettings, SmtpSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_SECONDS = 5.0

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def redact(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host (the path and query may be a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


class RefusedAddress(ValueError):
    """A webhook's host is, or resolves to, an address the platform does not call."""


def allowed(address: Address, networks: tuple[Network, ...]) -> bool:
    """Public, or inside a network the administrator allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in networks):
        return True
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int, networks: tuple[Network, ...]) -> list[Address]:
    """Every address ``host`` stands for, all allowed; else RefusedAddress. A name that does not
    resolve raises OSError (socket.gaierror)."""
    try:
        addresses: list[Address] = [ipaddress.ip_address(host)]
    except ValueError:
        if host.lower().rstrip(".") == "localhost" or host.lower().rstrip(".").endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        else:
            lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            try:
                infos = await asyncio.wait_for(lookup, RESOLVE_SECONDS)
            except TimeoutError as exc:
                raise OSError(f"{host} did not resolve within {RESOLVE_SECONDS:.0f} s") from exc
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    refused = [a for a in addresses if not allowed(a, networks)]
    if refused:
        raise RefusedAddress(
            f"{host} is not a public address ({', '.join(sorted({str(a) for a in refused}))}); "
            "an administrator may allow networks with NBP_NOTIFY_WEBHOOK_ALLOWED_NETWORKS"
        )
    return addresses


def default_port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


async def pinned(url: str, networks: tuple[Network, ...]) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """``url`` aimed at the address just checked: the URL with that address, the ``Host`` header and
    the TLS server name of the original host (certificates are checked against it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = (await resolve(host, default_port(parts.scheme, parts.port), networks))[0]
    named = f"[{host}]" if ":" in host else host
    headers = {"Host": f"{named}:{parts.port}" if parts.port else named}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return httpx.URL(url).copy_with(host=str(address)), headers, extensions


async def check_webhook(url: str | None) -> str:
    if url is None:
        raise Invalid.field("url", "required", "a webhook needs its url")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise Invalid.field("url", "http_url", "must be an http:// or https:// URL with a host")
    try:
        await resolve(
            parts.hostname,
            default_port(parts.scheme, port),
            NotifySettings().webhook_allowed_networks,
        )
    except RefusedAddress as exc:
        raise Invalid.field("url", "public_address", f"must reach a public address: {exc}") from exc
    except OSError:
        pass  # not resolvable now (DNS may come later): each delivery resolves and checks again
    return url


def check_email(address: str | None) -> str:
    if address is None:
        raise Invalid.field("email", "required", "an e-mail notification needs its address")
    if not EMAIL.match(address):
        raise Invalid.field("email", "email", "must be an e-mail address (name@domain)")
    if SmtpSettings().host is None:
        raise Invalid.field("channel", "smtp", "e-mail is not configured on this platform (NBP_SMTP_HOST)")
    return address
