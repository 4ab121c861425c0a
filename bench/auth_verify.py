"""What token verification costs, side by side in one run (cached key set, the local Keycloak's tokens).

    .cache/uv/bin/uv run --frozen python bench/auth_verify.py [--seconds 3]

Prints the cost of ``TokenVerifier.verify`` per token (every check, and a token it has verified
before), and the throughput of an in-process endpoint
guarded by ``current_principal`` with NBP_AUTH=keycloak against the same endpoint with NBP_AUTH=none,
as a ratio. Starts the local Keycloak through scripts/keycloak.py if it is not running (and leaves it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
from nbp_common.auth import AuthSettings, TokenVerifier
from nbp_common.auth.testing import bearer, guarded_client, start_local_keycloak


async def per_second(seconds: float, call: Callable[[], Awaitable[None]]) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(50):
            await call()
        done += 50
    return done / (time.perf_counter() - started)


async def main(seconds: float, rounds: int) -> None:
    keycloak, _ = start_local_keycloak()
    token = await keycloak.access_token("alice")

    for label, cache_size in (("every check", 0), ("remembered token", 4096)):
        verifier = TokenVerifier(keycloak.auth_settings(oidc_verified_cache_size=cache_size))
        await verifier.verify(token)  # loads the key set once

        async def verify(verifier: TokenVerifier = verifier) -> None:
            await verifier.verify(token)

        rate = await per_second(seconds, verify)
        await verifier.aclose()
        print(f"TokenVerifier.verify, {label:17}: {1e6 / rate:8.1f} µs per token ({rate:,.0f}/s)")

    async def endpoint(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
        async def call() -> None:
            response = await client.get("/whoami", headers=headers)
            assert response.status_code == 200

        return await per_second(seconds / rounds, call)

    # Alternating rounds, median of each: the machine's other load hits both sides alike.
    checked_rates: list[float] = []
    unchecked_rates: list[float] = []
    async with (
        guarded_client(keycloak.auth_settings()) as checked,
        guarded_client(AuthSettings(auth="none"), base_url="http://127.0.0.1") as unchecked,
    ):
        for _ in range(rounds):
            checked_rates.append(await endpoint(checked, bearer(token)))
            unchecked_rates.append(await endpoint(unchecked, {}))
    with_auth, without = statistics.median(checked_rates), statistics.median(unchecked_rates)
    print(f"GET /whoami, NBP_AUTH=keycloak: {with_auth:9,.0f} req/s (median of {rounds})")
    print(f"GET /whoami, NBP_AUTH=none:     {without:9,.0f} req/s")
    print(
        f"ratio keycloak/none: {with_auth / without:.2f} "
        "(in-process, no database: the upper bound of the relative cost)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=6, help="alternating endpoint rounds")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds))
