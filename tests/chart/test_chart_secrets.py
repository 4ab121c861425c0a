# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""Credentials: in Secrets only, overridable by existing Secrets, and kept across upgrades."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import CHART_SRC, RELEASE, by_kind, containers, decoded, is_ours, one, pod_specs

SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)s?$", re.I)
# Keys that name a Secret or say where a secret lives, not a secret value.
NAMING_KEYS = re.compile(r"(secretName|existingSecret\w*|secretKeyRef|secretRef|\w+Name|name|key)$")
PLACEHOLDER = re.compile(r"^\$\{[A-Z0-9_]+(:[^}]*)?\}$")

CREDENTIALS = {
    "dbRegistry": f"{RELEASE}-db-registry",
    "dbExecutor": f"{RELEASE}-db-executor",
    "dbHistory": f"{RELEASE}-db-history",
    "dbSupersetRo": f"{RELEASE}-db-superset-ro",
    "dbSuperset": f"{RELEASE}-db-superset",
    "dbKeycloak": f"{RELEASE}-db-keycloak",
    "keycloakAdmin": f"{RELEASE}-keycloak-admin",
    "oidcClients": "nbp-oidc-clients",
    "supersetSecretKey": f"{RELEASE}-superset-secret-key",
}


def _walk(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out += [(f"{path}.{key}", str(key), value)] if not isinstance(value, (dict, list)) else []
            out += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _walk(value, f"{path}[{index}]")
    return out


def _secret_values(docs: list[dict[str, Any]]) -> set[str]:
    return {
        value
        for secret in by_kind(docs, "Secret")
        for key, value in decoded(secret).items()
        if key != "username" and len(value) >= 8
    }


def test_default_values_hold_no_secret(values: dict[str, Any]) -> None:
    leaks = [
        f"{path} = {value!r}"
        for path, key, value in _walk(values)
        if SECRET_KEY.search(key) and not NAMING_KEYS.search(key) and value not in ("", None, False, True)
    ]
    assert not leaks, "secret-looking values in values.yaml:\n" + "\n".join(leaks)


def test_no_secret_in_any_configmap(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for variant, docs in rendered.items():
        secrets = _secret_values(docs)
        for cm in by_kind(docs, "ConfigMap"):
            for key, text in (cm.get("data") or {}).items():
                where = f"{variant}: ConfigMap {cm['metadata']['name']}/{key}"
                # z2jh's name table maps `image-pull-secret` to the Secret's resource name, not a value
                names_a_secret = cm["metadata"]["name"] == "hub" and text == key
                assert not (SECRET_KEY.search(key) and text and not names_a_secret), f"{where} is a secret"
                for value in secrets:
                    assert value not in text, (
                        f"{variant}: a Secret's value appears in ConfigMap {cm['metadata']['name']}/{key}"
                    )
                if key.endswith(".json"):
                    _assert_placeholders_only(json.loads(text), f"{variant} {cm['metadata']['name']}/{key}")
                else:
                    for line in text.splitlines():
                        name, sep, value = line.partition(":")
                        if sep and SECRET_KEY.search(name.strip()) and value.strip():
                            raise AssertionError(f"{variant}: {cm['metadata']['name']}/{key}: {line.strip()}")


def _assert_placeholders_only(realm: Any, where: str) -> None:
    """Client secrets and user credentials in the realm must be ${ENV} placeholders."""
    for path, key, value in _walk(realm):
        if key == "secret" or (key == "value" and ".credentials[" in path):
            assert isinstance(value, str), f"{where}: {path} is not a string"
            assert PLACEHOLDER.match(value), f"{where}: {path} holds a literal secret"


def test_credentials_are_secrets_and_env_comes_from_secret_refs(default: list[dict[str, Any]]) -> None:
    secrets = {s["metadata"]["name"]: s for s in by_kind(default, "Secret") if is_ours(s)}
    assert set(secrets) == set(CREDENTIALS.values())
    # z2jh's own Secret (proxy token, cookie secret) is generated and kept by z2jh with `lookup`
    assert {s["metadata"]["name"] for s in by_kind(default, "Secret") if not is_ours(s)} == {"hub"}
    for name, secret in secrets.items():
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", name
        assert all(len(v) >= 32 for k, v in decoded(secret).items() if k != "username"), name
    for ref, _meta, spec in pod_specs(default):
        for container in containers(spec):
            for item in container.get("env", []):
                if SECRET_KEY.search(item["name"]):
                    assert "secretKeyRef" in item.get("valueFrom", {}), (
                        f"{ref}: {item['name']} is not from a Secret"
                    )


def _mounted_secrets(spec: dict[str, Any]) -> set[str]:
    """The Secrets a pod mounts as files (secret volumes and projected volumes' secret sources)."""
    names = set()
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def test_existing_secrets_replace_every_generated_one(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["existing-secrets"]
    generated = [s["metadata"]["name"] for s in by_kind(docs, "Secret") if is_ours(s)]
    assert generated == [], "no Secret is generated when all are given"
    refs = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for _ref, _meta, spec in pod_specs(docs)
        for container in containers(spec)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert refs == {
        "nbp-db-app",
        "ext-db-registry",
        "ext-db-executor",
        "ext-db-history",
        "ext-oidc-clients",
        "ext-db-keycloak",
        "ext-keycloak-admin",
        "hub",  # z2jh's own Secret (proxy token), which it generates and keeps itself
    }
    # secrets mounted as files (the services' passwords, the executor's client secret, Superset's)
    mounted = {name for _ref, _meta, spec in pod_specs(docs) for name in _mounted_secrets(spec)}
    assert mounted == {
        "ext-db-registry",
        "ext-db-executor",
        "ext-db-history",
        "ext-oidc-clients",
        "ext-db-superset",
        "ext-db-superset-ro",
        "ext-superset-secret-key",
        "hub",  # z2jh's own, mounted into the hub
    }
    (cluster,) = by_kind(docs, "Cluster")
    roles = {
        r["name"]: r["passwordSecret"]["name"] for r in cluster["spec"]["managed"]["roles"] if r["login"]
    }
    assert roles == {
        "nbp_registry": "ext-db-registry",
        "nbp_executor": "ext-db-executor",
        "nbp_history": "ext-db-history",
        "superset_ro": "ext-db-superset-ro",
        "superset": "ext-db-superset",
        "keycloak": "ext-db-keycloak",
    }


def test_generated_secrets_are_looked_up_before_generated() -> None:
    """Source check: each random value comes from the one helper, and it consults `lookup` first."""
    templates = {p: p.read_text() for p in (CHART_SRC / "templates").rglob("*") if p.is_file()}
    generators = re.compile(
        r"\b(randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|genPrivateKey)\b"
    )
    users = [str(p) for p, text in templates.items() if generators.search(text)]
    assert users == [str(CHART_SRC / "templates" / "_helpers.tpl")], users
    helpers = templates[CHART_SRC / "templates" / "_helpers.tpl"]
    block = helpers.split('{{- define "nbp.generatedValue" -}}', 1)[1].split("{{- end -}}\n\n", 1)[0]
    assert block.index('lookup "v1" "Secret"') < block.index("randAlphaNum")
    assert len(generators.findall(helpers)) == 1, "randomness outside nbp.generatedValue"
    secrets_tpl = templates[CHART_SRC / "templates" / "secrets.yaml"]
    assert secrets_tpl.count('include "nbp.generatedValue"') == 4  # db, login, oidc (per client), key


def test_keycloak_secrets_are_env_from_secrets(values: dict[str, Any], default: list[dict[str, Any]]) -> None:
    env = values["keycloakx"]["extraEnv"]
    for name in (
        "KC_DB_PASSWORD",
        "KC_BOOTSTRAP_ADMIN_PASSWORD",
        "NBP_JUPYTERHUB_CLIENT_SECRET",
        "NBP_SUPERSET_CLIENT_SECRET",
        "NBP_EXECUTOR_CLIENT_SECRET",
    ):
        block = env.split(f"- name: {name}\n", 1)[1].split("- name:", 1)[0]
        assert "secretKeyRef" in block, name
    config = one(default, "ConfigMap", f"{RELEASE}-keycloak-env")["data"]
    assert not any(SECRET_KEY.search(key) for key in config)
