"""Who is calling, and what the platform's roles let them do."""

from __future__ import annotations

from dataclasses import dataclass

# Realm roles (keycloak-realm/realm.json); people get them through the groups admins, data-scientists
# and analysts.
ADMIN_ROLE = "nbp-admin"
USER_ROLE = "nbp-user"
VIEWER_ROLE = "nbp-viewer"
# Carried only by the tokens of a service's own client (client credentials; in the realm a hard-coded
# role mapper on that client puts it there, so that no user entry is needed). The API treats it as
# admin-equivalent: the executor reads every user's notebooks and reports every user's runs. It is a
# role of its own, not nbp-admin, so that a log or a rule can tell a service from a person, and so that
# services can later be given less than admins without touching any person's rights.
SERVICE_ROLE = "nbp-service"

PLATFORM_ROLES = frozenset({ADMIN_ROLE, USER_ROLE, VIEWER_ROLE})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its access token (or the development mode) says.

    ``username`` is the token's ``preferred_username``: the identity the services key data on.
    """

    username: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    # The token's ``sub`` and ``azp`` (the client it was issued to); None without a token.
    subject: str | None = None
    client_id: str | None = None
    # False only for the development principal of NBP_AUTH=none: nothing was checked.
    authenticated: bool = True

    @property
    def is_service(self) -> bool:
        return SERVICE_ROLE in self.roles

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles or self.is_service

    @property
    def can_write(self) -> bool:
        return self.is_admin or USER_ROLE in self.roles

    @property
    def can_read(self) -> bool:
        return self.can_write or VIEWER_ROLE in self.roles

    def may_read(self, owner: str) -> bool:
        """May this caller read data owned by ``owner``? Their own (any role), or anyone's (admins)."""
        return self.is_admin or (self.can_read and owner == self.username)

    def may_write(self, owner: str) -> bool:
        """May this caller change data owned by ``owner``? Their own (users), or anyone's (admins)."""
        return self.is_admin or (self.can_write and owner == self.username)


DEV_PRINCIPAL = Principal(
    username="dev",
    roles=PLATFORM_ROLES,
    groups=frozenset(),
    subject=None,
    client_id=None,
    authenticated=False,
)
"""Every caller when NBP_AUTH=none: all roles, nothing checked (loopback-only, see assert_loopback_only)."""
