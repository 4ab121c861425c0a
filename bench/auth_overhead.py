"""What token verification costs the registry's hottest read: ``GET /db/notebooks/{id}`` with 32
concurrent clients against a registry verifying Keycloak tokens (NBP_AUTH=keycloak), side by side in one
run with the same registry with authentication off (NBP_AUTH=none), over the same PostgreSQL.

Target: with verification at most 10% slower. Starts the local Keycloak (scripts/keycloak.py) if needed.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
from nbp_common import migrations
from nbp_registry.main import SPEC

from bench._support import Load, drive, embedded_postgres, env_with
from tests.support.common import free_port, start_process
from tests.support.keycloak import start_local_keycloak

CLIENTS = 32
SECONDS = 8
ROUNDS = 3


def main() -> None:
    keycloak, _ = start_local_keycloak()
    token = asyncio.run(keycloak.access_token("alice"))
    logs = Path(tempfile.mkdtemp(prefix="nbp-bench-"))
    registry = str(Path(sys.executable).with_name("nbp-registry"))
    with embedded_postgres() as url:
        migrations.upgrade(SPEC.migrations, url)
        database = url.render_as_string(hide_password=False)
        servers = {}
        modes = {
            "none": {"NBP_AUTH": "none"},
            "keycloak": {
                "NBP_AUTH": "keycloak",
                "NBP_OIDC_ISSUER": keycloak.issuer,
                "NBP_OIDC_JWKS_URL": keycloak.jwks_url,
            },
        }
        try:
            for mode, env in modes.items():
                port = free_port()
                servers[mode] = start_process(
                    [registry, "serve", "--port", str(port)],
                    env_with(NBP_DATABASE_URL=database, **env),
                    port,
                    logs / f"{mode}.log",
                )
            headers = {"Authorization": f"Bearer {token}"}
            created = httpx.post(
                f"{servers['keycloak'].url}/db/notebooks",
                json={"name": "bench", "file_path": "bench.ipynb", "username": "alice"},
                headers=headers,
            ).json()
            path = f"/db/notebooks/{created['id']}"
            loads: dict[str, list[Load]] = {mode: [] for mode in modes}
            for _ in range(ROUNDS):
                loads["none"].append(drive(servers["none"].url + path, clients=CLIENTS, seconds=SECONDS))
                loads["keycloak"].append(
                    drive(
                        servers["keycloak"].url + path,
                        clients=CLIENTS,
                        seconds=SECONDS,
                        header=f"Authorization: Bearer {token}",
                    )
                )
        finally:
            for server in servers.values():
                server.stop()

    rates = {mode: statistics.median(load.rps for load in runs) for mode, runs in loads.items()}
    errors = {mode: sum(load.errors for load in runs) for mode, runs in loads.items()}
    print(f"GET /db/notebooks/{{id}}, {CLIENTS} clients, {SECONDS}s x {ROUNDS} alternating rounds (median)")
    for mode in modes:
        print(f"  NBP_AUTH={mode:<9} {rates[mode]:8.0f} req/s   errors {errors[mode]}")
    slowdown = 1 - rates["keycloak"] / rates["none"]
    verdict = "target met" if slowdown <= 0.10 and not any(errors.values()) else "TARGET NOT MET"
    print(f"  -> with verification {slowdown:+.1%} slower (target <= 10%): {verdict}")


if __name__ == "__main__":
    main()
