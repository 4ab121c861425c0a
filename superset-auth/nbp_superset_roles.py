"""Who gets which Superset role: one table, read by the configuration (AUTH_ROLES_MAPPING) and by the
dashboard import (which gives the viewer role read access to the platform's datasets)."""

from __future__ import annotations

# A role that reads the platform's dashboards and changes nothing: Gamma's permissions without the ones
# that create or change charts, dashboards and datasets, plus read access to the platform's datasets
# (made by the dashboard import, after `superset init` has brought Gamma up to date).
VIEWER_ROLE = "Platform Viewer"
# Gamma's permissions the viewer role does not get: writing the objects a user owns. (Dashboard filter
# state and permalinks, which merely viewing a dashboard writes, stay.)
VIEWER_LEAVES_OUT: frozenset[tuple[str, str]] = frozenset(
    ("can_write", view)
    for view in (
        "Chart",
        "Dashboard",
        "Dataset",
        "Annotation",
        "CssTemplate",
        "ReportSchedule",
        "SavedQuery",
        "Tag",
        "Database",
        "Theme",
    )
)
# What a user in none of the groups gets: Superset's Public role, empty while PUBLIC_ROLE_LIKE is None.
NO_ACCESS_ROLE = "Public"

# Keycloak group (the realm's `groups` claim) -> Superset roles.
GROUP_ROLES: dict[str, tuple[str, ...]] = {
    "admins": ("Admin",),
    "data-scientists": ("Alpha",),
    "analysts": (VIEWER_ROLE,),
}
