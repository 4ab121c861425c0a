"""Let the read-only role read the history schema (run by the history pod after its migration).

Runs as the schema's owner (nbp_history): grants USAGE on the schema, SELECT on its tables, and makes
tables the owner creates later readable too. Every statement is idempotent.
"""

import asyncio
import os
import re

import asyncpg

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(name: str) -> str:
    if not IDENTIFIER.match(name):
        raise SystemExit(f"refusing unexpected identifier {name!r}")
    return f'"{name}"'


async def main() -> None:
    role, schema = os.environ["NBP_READONLY_ROLE"], os.environ["NBP_READONLY_SCHEMA"]
    conn = await asyncpg.connect(
        host=os.environ["NBP_DB_HOST"],
        port=int(os.environ["NBP_DB_PORT"]),
        database=os.environ["NBP_DB_NAME"],
        user=os.environ["NBP_DB_USER"],
        password=os.environ["NBP_DB_PASSWORD"],
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            raise SystemExit(f"role {role} does not exist yet (the CNPG operator creates it); retrying")
        async with conn.transaction():
            await conn.execute(f"GRANT USAGE ON SCHEMA {ident(schema)} TO {ident(role)}")
            await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {ident(schema)} TO {ident(role)}")
            await conn.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {ident(schema)} GRANT SELECT ON TABLES TO {ident(role)}"
            )
        print(f"granted read-only access on schema {schema} to {role}")
    finally:
        await conn.close()


asyncio.run(main())
