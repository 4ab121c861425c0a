"""Prepare the umbrella chart for checks, and render it.

Helm reads nothing outside a chart's folder, so two inputs that live at the repository root are copied in:
`keycloak-realm/*.json` (the realm Keycloak imports), `superset-auth/*.py` (Superset's configuration) and
`services/hub/nbp_hub/keycloak_login.py` (JupyterHub's sign-in, as files/jupyterhub/).
`sync-files` does that for the chart in place (what `make chart-files` and `make deploy` run before Helm).

The third-party subcharts cannot be fetched from their repositories here; their published archives are in
a local folder (`--third-party`, /work/shared/charts: keycloakx, jupyterhub, cloudnative-pg). `prepare`
does what `helm dependency build` would: it copies the chart to a scratch folder and puts into that copy's
charts/ the archive `<name>-<version>.tgz` of every remote dependency, exactly the pinned version. A pin
with no such archive is an error (a version that does not exist), unless the dependency is named with
`--leave-out` (then it is dropped from the copy's Chart.yaml and its values stay unused).

    chart.py sync-files --chart charts/notebook-platform --repo .
    chart.py prepare --chart charts/notebook-platform --repo . --out .cache/chart/chart \
        --third-party /work/shared/charts [--leave-out superset]
    chart.py render --helm HELM --chart .cache/chart/chart/notebook-platform --out .cache/chart/render
    chart.py policy-input --rendered .cache/chart/render --exemptions tests/chart/kube-score-exemptions.yaml \
        --out .cache/chart/policy

`policy-input` writes the copy of the rendered manifests that kube-score reads: third-party objects whose
templates take no annotations get their documented `kube-score/ignore` exemptions added.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REALM_DIR = "keycloak-realm"
SUPERSET_DIR = "superset-auth"
# JupyterHub's Keycloak sign-in, the module the local hub uses too; the hub pod mounts it.
JUPYTERHUB_DIR = "jupyterhub"
JUPYTERHUB_LOGIN = "services/hub/nbp_hub/keycloak_login.py"
RELEASE = "nbp"
NAMESPACE = "notebook-platform"


def sync_files(chart: Path, repo: Path) -> None:
    files = chart / "files"
    realm_src = sorted((repo / REALM_DIR).glob("*.json"))
    for name, sources in (
        (REALM_DIR, realm_src),
        (SUPERSET_DIR, sorted((repo / SUPERSET_DIR).glob("*.py"))),
        (JUPYTERHUB_DIR, [repo / JUPYTERHUB_LOGIN]),
    ):
        dest = files / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for src in sources:
            shutil.copy2(src, dest / src.name)
        print(f"{dest}: {[s.name for s in sources]}")


def is_remote(dep: dict[str, Any]) -> bool:
    return str(dep.get("repository", "")).startswith(("http://", "https://", "oci://"))


def prepare(chart: Path, repo: Path, out: Path, third_party: Path, leave_out: list[str]) -> Path:
    dest = out / chart.name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(chart, dest, ignore=shutil.ignore_patterns("*.tgz", "Chart.lock"))
    meta_path = dest / "Chart.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    kept, dropped, missing = [], [], []
    for dep in meta.get("dependencies", []):
        if not is_remote(dep):
            kept.append(dep)
            continue
        if dep["name"] in leave_out:
            dropped.append(dep["name"])
            continue
        archive = third_party / f"{dep['name']}-{dep['version']}.tgz"
        if not archive.is_file():
            found = sorted(p.name for p in third_party.glob(f"{dep['name']}-*.tgz"))
            missing.append(f"{dep['name']} {dep['version']} (no {archive}; there: {found or 'none'})")
            continue
        shutil.copy2(archive, dest / "charts" / archive.name)
        kept.append(dep)
        print(f"{dest}/charts: {archive.name}")
    if missing:
        sys.exit("error: pinned subchart versions without an archive:\n  " + "\n  ".join(missing))
    meta["dependencies"] = kept
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    if dropped:
        print(f"{dest}: left out on request (--leave-out): {', '.join(dropped)}")
    sync_files(dest, repo)
    return dest


def variants(chart: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"default": []}
    for path in sorted((chart / "ci").glob("*-values.yaml")):
        found[path.name.removesuffix("-values.yaml")] = ["-f", str(path)]
    return found


def render(helm: str, chart: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    summary: dict[str, dict[str, int]] = {}
    for name, args in variants(chart).items():
        cmd = [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"error: {' '.join(cmd)}\n{proc.stderr}")
        (out / f"{name}.yaml").write_text(proc.stdout)
        kinds = Counter(d["kind"] for d in yaml.safe_load_all(proc.stdout) if d)
        summary[name] = dict(sorted(kinds.items()))
        print(f"rendered {name}: {sum(kinds.values())} manifests {dict(sorted(kinds.items()))}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


class _QuotedStrings(yaml.SafeDumper):
    """Every string double-quoted: PyYAML's YAML 1.1 rules would leave e.g. `8e33` plain, which YAML 1.2
    readers (kube-score) take for a number."""


_QuotedStrings.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def policy_input(rendered: Path, exemptions_file: Path, out: Path) -> None:
    exemptions = yaml.safe_load(exemptions_file.read_text())
    used = [0] * len(exemptions)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    for path in sorted(rendered.glob("*.yaml")):
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for doc in docs:
            meta = doc["metadata"]
            chart = meta.get("labels", {}).get("helm.sh/chart") or meta.get("labels", {}).get("chart", "")
            for index, rule in enumerate(exemptions):
                if (doc["kind"], meta["name"]) == (rule["kind"], rule["name"]) and chart.startswith(
                    f"{rule['chart']}-"
                ):
                    annotations = meta.setdefault("annotations", {})
                    current = [c for c in annotations.get("kube-score/ignore", "").split(",") if c]
                    annotations["kube-score/ignore"] = ",".join([*current, *rule["ignore"]])
                    used[index] += 1
        (out / path.name).write_text(yaml.dump_all(docs, Dumper=_QuotedStrings, sort_keys=False))
    stale = [f"{r['chart']} {r['kind']}/{r['name']}" for r, n in zip(exemptions, used, strict=True) if not n]
    if stale:
        sys.exit(f"error: {exemptions_file}: exemptions that match no rendered object: {', '.join(stale)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sync-files")
    p.add_argument("--chart", type=Path, required=True)
    p.add_argument("--repo", type=Path, required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--chart", type=Path, required=True)
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--third-party", type=Path, required=True, help="folder of <chart>-<version>.tgz archives")
    p.add_argument("--leave-out", action="append", default=[], help="a remote dependency to drop")
    p = sub.add_parser("render")
    p.add_argument("--helm", required=True)
    p.add_argument("--chart", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("policy-input")
    p.add_argument("--rendered", type=Path, required=True)
    p.add_argument("--exemptions", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.cmd == "sync-files":
        sync_files(args.chart, args.repo)
    elif args.cmd == "prepare":
        prepare(args.chart, args.repo, args.out, args.third_party, args.leave_out)
    elif args.cmd == "render":
        render(args.helm, args.chart, args.out)
    else:
        policy_input(args.rendered, args.exemptions, args.out)


if __name__ == "__main__":
    main()
