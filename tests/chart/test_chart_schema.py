# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""values.schema.json refuses what the chart does not know; the chart stops on inconsistent settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import CHART_SRC, is_ours


@pytest.mark.parametrize(
    "setting",
    [
        "bogus=1",
        "global.domian=typo.example.com",
        "global.existingSecrets.dbRegsitry=x",
        "registry.replicaz=3",
        "executor.wokers=3",
        "database.bogus=1",
        "workspace.sise=1Gi",
        "ingress.enabeld=false",
        "networkPolicy.ingressController.podSelektor.x=y",
        "oidc.audiance=x",
        "image.tga=1",
        "nbp-lib.anything=1",
        "superset.anything.goes=1",
        "superset.gunicorn.wokers=2",
        "executor.allowInternetEgress=true",
        "executor.runPods.maxx.cpu=8",
        "executor.runPods.resources.limits.gpu=1",
    ],
)
def test_unknown_keys_are_refused(helm_template: Any, setting: str) -> None:
    proc = helm_template.run("--set", setting)
    assert proc.returncode != 0, f"--set {setting} was accepted"
    assert "additional properties" in proc.stderr, proc.stderr
    assert "not allowed" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "setting",
    [
        "global.domain=Not_A_Host",
        "registry.replicas=two",
        "executor.workers=0",
        "image.pullPolicy=Sometimes",
        "workspace.accessModes={ReadWriteSometimes}",
        "workspace.mountPath=relative/path",
        # the trusted runner would run users' code inside the executor, with its credentials
        "executor.runner=trusted",
        "executor.runner=sandbox",
        "executor.runPods.imagePullPolicy=Sometimes",
        "executor.apiServerEgress=null",
    ],
)
def test_invalid_values_are_refused(helm_template: Any, setting: str) -> None:
    proc = helm_template.run("--set", setting)
    assert proc.returncode != 0, f"--set {setting} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


def test_subchart_values_pass_through(helm_template: Any) -> None:
    proc = helm_template.run(
        "--set",
        "keycloakx.replicas=2",
        "--set",
        "jupyterhub.cull.enabled=false",
    )
    assert proc.returncode == 0, proc.stderr


def test_defaults_and_ci_values_satisfy_the_schema() -> None:
    schema = json.loads((CHART_SRC / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    base = yaml.safe_load((CHART_SRC / "values.yaml").read_text())
    jsonschema.validate(base, schema)
    for path in sorted((CHART_SRC / "ci").glob("*-values.yaml")):
        merged = _merge(base, yaml.safe_load(path.read_text()))
        jsonschema.validate(merged, schema)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def test_hub_must_follow_an_existing_oidc_secret(helm_template: Any) -> None:
    proc = helm_template.run("--set", "global.existingSecrets.oidcClients=my-clients")
    assert proc.returncode != 0
    assert 'jupyterhub.hub.extraEnv.OAUTH_CLIENT_SECRET must read Secret "my-clients"' in proc.stderr


def test_hub_must_follow_an_existing_workspace_claim(helm_template: Any) -> None:
    proc = helm_template.run("--set", "workspace.existingClaim=shared")
    assert proc.returncode != 0
    assert 'jupyterhub.singleuser.storage.static.pvcName must be the workspace claim "shared"' in proc.stderr


def test_hub_must_follow_the_run_pods_image(helm_template: Any) -> None:
    for settings, expected in (
        (
            ["--set", "image.registry=registry.example.com"],
            "registry.example.com/notebook-platform/notebook:0.1.0",
        ),
        (["--set", "image.tag=0.2.0"], "notebook-platform/notebook:0.2.0"),
        (["--set", "executor.runPods.image=team/notebooks:7"], "team/notebooks:7"),
    ):
        proc = helm_template.run(*settings)
        assert proc.returncode != 0, settings
        assert f'jupyterhub.singleuser.image must be the run pods\' image "{expected}"' in proc.stderr
        # ... and the command it names is the fix
        name, tag = expected.rsplit(":", 1)
        fix = f"jupyterhub.singleuser.image.name={name} --set-string jupyterhub.singleuser.image.tag={tag}"
        assert f"--set {fix}" in proc.stderr
        helm_template.template(
            *settings,
            "--set", f"jupyterhub.singleuser.image.name={name}",
            "--set-string", f"jupyterhub.singleuser.image.tag={tag}",
        )  # fmt: skip


def test_external_identity_provider_needs_its_urls(helm_template: Any) -> None:
    proc = helm_template.run("--set", "keycloakx.enabled=false")
    assert proc.returncode != 0
    assert "set oidc.issuer, oidc.jwksUrl and oidc.tokenUrl" in proc.stderr


def test_release_names_are_kept_short(helm_template: Any) -> None:
    proc = helm_template.run(release="a-very-long-release-name-for-this-platform")
    assert proc.returncode != 0
    assert "longer than 30 characters" in proc.stderr


def test_any_release_name_works_with_the_defaults(helm_template: Any) -> None:
    docs = helm_template.template(release="team-a")
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment" and is_ours(d)}
    assert names == {"team-a-registry", "team-a-executor", "team-a-history", "team-a-superset"}
    # JupyterHub's names are fixed (README: one platform per namespace); Keycloak's follow the release
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    others = {d["metadata"]["name"] for d in workloads if not is_ours(d)}
    assert others == {"hub", "proxy", "team-a-keycloakx"}


def test_keycloak_realm_is_required(helm_template: Any, chart_copy: Path) -> None:
    for realm in (chart_copy / "files" / "keycloak-realm").glob("*.json"):
        realm.unlink()
    proc = helm_template.run(chart=chart_copy)
    assert proc.returncode != 0
    assert "make chart-files" in proc.stderr
    proc = helm_template.run("-f", str(chart_copy / "ci" / "minimal-values.yaml"), chart=chart_copy)
    assert proc.returncode == 0, "without Keycloak no realm is needed: " + proc.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("jupyterhub.hub.bogusKey=1", "at '/hub': additional properties 'bogusKey' not allowed"),
        ("keycloakx.image.pullPolicy=Sometimes", "at '/image/pullPolicy': 'Sometimes' does not match"),
    ],
)
def test_subcharts_apply_their_own_values_schemas(helm_template: Any, setting: str, message: str) -> None:
    """The real subcharts are rendered: values handed to them meet their schemas or the render stops."""
    proc = helm_template.run("--set", setting)
    assert proc.returncode != 0
    assert message in proc.stderr
