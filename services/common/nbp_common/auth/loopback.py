"""NBP_AUTH=none is for one person's machine: the process refuses to listen anywhere else."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from nbp_common.auth.dependencies import log_auth_mode
from nbp_common.auth.settings import AuthSettings


class InsecureBindError(RuntimeError):
    """NBP_AUTH=none with a listener on a non-loopback address."""


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) and ``localhost``; never a wildcard like 0.0.0.0 or ::.

    Other names are not resolved: a name that resolves to loopback today may not tomorrow.
    """
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def assert_loopback_only(host: str | Iterable[str], settings: AuthSettings | None = None) -> None:
    """Refuse to start with NBP_AUTH=none unless every listener is on loopback; say loudly that it is off.

    Call at process start with every address the process will listen on (``--host``); with
    ``NBP_AUTH=keycloak`` it only logs the mode.
    """
    settings = settings or AuthSettings()
    hosts = [host] if isinstance(host, str) else list(host)
    if settings.auth == "none":
        exposed = [h for h in hosts if not is_loopback_host(h)]
        if exposed or not hosts:
            raise InsecureBindError(
                f"NBP_AUTH=none turns authentication off, so the server may only listen on loopback "
                f"(127.0.0.1, ::1, localhost), not on {', '.join(exposed) or 'an unknown address'}. "
                "Bind to 127.0.0.1, or set NBP_AUTH=keycloak and NBP_OIDC_ISSUER "
                "(`python3 scripts/keycloak.py env` prints the local Keycloak's)."
            )
    log_auth_mode(settings)
