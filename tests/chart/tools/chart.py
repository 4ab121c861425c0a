"""Prepare the umbrella chart for checks, and render it.

Helm reads nothing outside a chart's folder, so two inputs that live at the repository root are copied in:
`keycloak-realm/*.json` (the realm Keycloak imports) and `superset-auth/*.py` (Superset's configuration).
`sync-files` does that for the chart in place (what `make chart-files` and `make deploy` run before Helm).

The third-party subcharts (keycloakx, jupyterhub, superset) cannot be fetched here, and Helm refuses to
lint or render a chart whose declared dependencies are missing. `prepare` therefore copies the chart to a
scratch folder and drops the remote dependencies from that copy's Chart.yaml; our own library subchart
stays. The values that configure the subcharts stay too, so every template of ours that wires them
(realm ConfigMap, secrets, ingress paths, network policies) is rendered and checked.

    chart.py sync-files --chart charts/notebook-platform --repo .
    chart.py prepare --chart charts/notebook-platform --repo . --out .cache/chart/chart
    chart.py render --helm HELM --chart .cache/chart/chart/notebook-platform --out .cache/chart/render
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
RELEASE = "nbp"
NAMESPACE = "notebook-platform"


def sync_files(chart: Path, repo: Path) -> None:
    files = chart / "files"
    realm_src = sorted((repo / REALM_DIR).glob("*.json"))
    for name, sources in ((REALM_DIR, realm_src), (SUPERSET_DIR, sorted((repo / SUPERSET_DIR).glob("*.py")))):
        dest = files / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for src in sources:
            shutil.copy2(src, dest / src.name)
        print(f"{dest}: {[s.name for s in sources]}")


def is_remote(dep: dict[str, Any]) -> bool:
    return str(dep.get("repository", "")).startswith(("http://", "https://", "oci://"))


def prepare(chart: Path, repo: Path, out: Path) -> Path:
    dest = out / chart.name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(chart, dest, ignore=shutil.ignore_patterns("*.tgz", "Chart.lock"))
    meta_path = dest / "Chart.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    deps = meta.get("dependencies", [])
    left_out = [d["name"] for d in deps if is_remote(d)]
    meta["dependencies"] = [d for d in deps if not is_remote(d)]
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    print(f"{dest}: third-party subcharts left out (cannot be fetched here): {', '.join(left_out)}")
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
    p = sub.add_parser("render")
    p.add_argument("--helm", required=True)
    p.add_argument("--chart", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.cmd == "sync-files":
        sync_files(args.chart, args.repo)
    elif args.cmd == "prepare":
        prepare(args.chart, args.repo, args.out)
    else:
        render(args.helm, args.chart, args.out)


if __name__ == "__main__":
    main()
