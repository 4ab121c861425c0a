"""The browser every login test drives: Debian's chromium, headless, with the flags the project uses, and
the one way a test signs in through Keycloak's own form (from sync or async Playwright)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Keycloak's sign-in form: shown once this field is.
KEYCLOAK_FORM = "#username"


def chromium() -> str:
    """The browser's path; a missing browser is a failure that says how to install it, never a skip."""
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: apt-get install -y chromium (make browser-tools)")
    return CHROMIUM


def launch_options() -> dict[str, Any]:
    """Playwright's `chromium.launch(**launch_options())`: Debian's chromium (never a browser Playwright
    downloads), headless, the project's flags."""
    return {"executable_path": chromium(), "headless": True, "args": CHROMIUM_FLAGS}


def _keycloak_form_steps(username: str, password: str) -> list[tuple[str, tuple[str, ...]]]:
    """What a person does on Keycloak's form, in order: Page method and arguments."""
    return [
        ("wait_for_selector", (KEYCLOAK_FORM,)),
        ("fill", ("#username", username)),
        ("fill", ("#password", password)),
        ("click", ("#kc-login",)),
    ]


def keycloak_sign_in(page: Page, username: str, password: str) -> None:
    """Sign in on Keycloak's own form, shown or about to be shown in `page` (sync Playwright)."""
    for method, args in _keycloak_form_steps(username, password):
        getattr(page, method)(*args)


async def keycloak_sign_in_async(page: AsyncPage, username: str, password: str) -> None:
    """The same steps on an async Playwright page."""
    for method, args in _keycloak_form_steps(username, password):
        await getattr(page, method)(*args)
