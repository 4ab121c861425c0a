# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""The ingress sends DESIGN §3's paths to the right service; every public URL derives from global.domain."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import RELEASE, REPO, by_kind, env_map, is_ours, one

DOMAIN = "nbp.localtest.me"

# DESIGN §3: path -> service (Prefix unless noted). `/` itself is Exact so nothing unlisted is published.
API_TABLE = {
    ("/", "Exact"): "registry",
    ("/health", "Prefix"): "registry",
    ("/docs", "Prefix"): "registry",
    ("/redoc", "Prefix"): "registry",
    ("/openapi.json", "Prefix"): "registry",
    ("/db/notebooks", "Prefix"): "registry",
    ("/db/parameters", "Prefix"): "registry",
    ("/execute", "Prefix"): "executor",
    ("/run-notebook", "Prefix"): "executor",
    ("/execute-notebook", "Prefix"): "executor",
    ("/list-notebooks", "Prefix"): "executor",
    ("/executions", "Prefix"): "executor",
    ("/db/executions", "Prefix"): "history",
}


def routes(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[str, int]]:
    (ingress,) = by_kind(docs, "Ingress")
    out = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            key = (rule["host"], path["path"], path["pathType"])
            assert key not in out, f"duplicate route {key}"
            out[key] = (backend["name"], backend["port"]["number"])
    return out


def api_routes(domain: str) -> dict[tuple[str, str, str], tuple[str, int]]:
    return {(domain, path, kind): (f"{RELEASE}-{svc}", 8000) for (path, kind), svc in API_TABLE.items()}


def test_path_table_is_exactly_design_section_3(default: list[dict[str, Any]]) -> None:
    expected = api_routes(DOMAIN) | {
        (DOMAIN, "/auth", "Prefix"): (f"{RELEASE}-keycloakx-http", 80),
        (DOMAIN, "/hub", "Prefix"): ("proxy-public", 80),
        (DOMAIN, "/user", "Prefix"): ("proxy-public", 80),
        (f"superset.{DOMAIN}", "/", "Prefix"): (f"{RELEASE}-superset", 8088),
    }
    assert routes(default) == expected


def test_routes_of_disabled_components_are_absent(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert routes(rendered["minimal"]) == api_routes(DOMAIN)


def test_backends_exist(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for variant, docs in rendered.items():
        services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
        for (_host, path, _kind), (name, port) in routes(docs).items():
            if name.startswith(f"{RELEASE}-") and name.split("-", 1)[1] in {
                "registry",
                "executor",
                "history",
            }:
                assert port in [p["port"] for p in services[name]["spec"]["ports"]], f"{variant} {path}"


def test_tls_covers_both_hosts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert "tls" not in by_kind(rendered["default"], "Ingress")[0]["spec"]
    (ingress,) = by_kind(rendered["existing-secrets"], "Ingress")
    (tls,) = ingress["spec"]["tls"]
    domain = "platform.internal.example.org"
    assert tls == {"hosts": [domain, f"superset.{domain}"], "secretName": "platform-tls"}


def test_every_url_derives_from_global_domain(helm_template: Any) -> None:
    domain = "data.example.net"
    docs = helm_template.template("--set", f"global.domain={domain}", "--set", "global.tls.enabled=true")
    hosts = {host for host, _path, _kind in routes(docs)}
    assert hosts == {domain, f"superset.{domain}"}
    issuer = f"https://{domain}/auth/realms/notebook-platform"
    for deployment in filter(is_ours, by_kind(docs, "Deployment")):
        env = env_map(deployment["spec"]["template"]["spec"]["containers"][0])
        assert env["NBP_OIDC_ISSUER"] == issuer
    keycloak = one(docs, "ConfigMap", f"{RELEASE}-keycloak-env")["data"]
    assert keycloak["KC_HOSTNAME"] == f"https://{domain}/auth"
    assert keycloak["NBP_DOMAIN"] == domain
    # The realm builds its redirect URIs from these placeholders when Keycloak imports it.
    realm_text = (REPO / "keycloak-realm" / "realm.json").read_text()
    for name, value in keycloak.items():
        realm_text = re.sub(r"\$\{" + name + r"(:[^}]*)?\}", value, realm_text)
    redirects = {c["clientId"]: c.get("redirectUris", []) for c in json.loads(realm_text)["clients"]}
    assert redirects["jupyterhub"] == [f"https://{domain}/hub/oauth_callback"]
    assert redirects["superset"] == [f"https://superset.{domain}/oauth-authorized/keycloak"]


def test_subcharts_derive_their_urls_from_global_domain(values: dict[str, Any]) -> None:
    """JupyterHub gets global.domain (Helm passes `global` to subcharts) and builds every URL from it, as
    our Superset template does: no host name is written in their values."""
    hub_config = values["jupyterhub"]["hub"]["extraConfig"]["10-notebook-platform.py"]
    assert 'get_config("global.domain")' in hub_config
    # keycloak_login.configure builds <hub_public_url>/hub/oauth_callback and the rest from it.
    assert "hub_public_url=public" in hub_config
    text = str(values["jupyterhub"]) + str(values["superset"]) + str(values["keycloakx"])
    assert DOMAIN not in text
