"""What verifying one token costs (cached key set, the local Keycloak's tokens): every check, and a
token verified before. The endpoint-level figure is ``bench/auth_overhead.py``.

    make bench BENCH=auth_verify

Starts the local Keycloak through scripts/keycloak.py if it is not running (and leaves it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nbp_common.auth import TokenVerifier

from tests.support.keycloak import start_local_keycloak


async def per_second(seconds: float, call: Callable[[], Awaitable[None]]) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(50):
            await call()
        done += 50
    return done / (time.perf_counter() - started)


async def measure(seconds: float) -> None:
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


def main() -> None:
    asyncio.run(measure(seconds=3.0))


if __name__ == "__main__":
    main()
