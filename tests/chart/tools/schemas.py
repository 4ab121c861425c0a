"""Build the JSON schemas kubeconform validates the rendered chart against.

Two sources, both fetched through ordinary package clients:

* Kubernetes: the strict schemas the `kubernetes-validate` package ships (installed in the chart venv).
  They keep every definition in one `_definitions.json` referenced as `/api/_definitions.json#/$defs/...`,
  which kubeconform cannot resolve, so each resource kind is rewritten as a standalone schema that embeds
  only the definitions it reaches.
* CloudNativePG: the CRDs in the operator's Go module (`go mod download`). Each served version's
  `openAPIV3Schema` is converted to JSON Schema and made strict (`additionalProperties: false` wherever
  the CRD lists properties and does not preserve unknown fields), in kubeconform's
  `{group}/{kind}_{version}.json` layout.

Usage: schemas.py --out DIR --kube-version 1.30.0 [--kube-version ...] --cnpg-version v1.27.1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CNPG_MODULE = "github.com/cloudnative-pg/cloudnative-pg"
DEFS_PREFIX = "#/$defs/"


def kubernetes_validate_schemas() -> Path:
    import kubernetes_validate  # type: ignore[import-not-found, import-untyped, unused-ignore]

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    if not root.is_dir():
        sys.exit(f"error: no schema folder in the kubernetes-validate package at {root}")
    return root


def _def_name(ref: str) -> str:
    if DEFS_PREFIX not in ref:
        raise ValueError(f"unexpected $ref {ref!r}")
    return ref.split(DEFS_PREFIX, 1)[1]


def _collect_refs(node: Any, defs: dict[str, Any], seen: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = _def_name(value)
                if name not in seen:
                    seen.add(name)
                    _collect_refs(defs[name], defs, seen)
            else:
                _collect_refs(value, defs, seen)
    elif isinstance(node, list):
        for item in node:
            _collect_refs(item, defs, seen)


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            # a "$ref" whose value is a schema is a property named "$ref" (JSONSchemaProps has one)
            key: (
                DEFS_PREFIX + _def_name(value)
                if key == "$ref" and isinstance(value, str)
                else _local_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(item) for item in node]
    return node


def build_kubernetes(out: Path, version: str) -> int:
    src = kubernetes_validate_schemas() / f"v{version}-local-strict"
    if not src.is_dir():
        available = sorted(p.name for p in src.parent.iterdir())
        sys.exit(f"error: kubernetes-validate has no schemas for {version}; available: {available}")
    defs = json.loads((src / "_definitions.json").read_text())["$defs"]
    dest = out / "k8s" / f"v{version}-standalone-strict"
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        if path.name in {"_definitions.json", "all.json"}:
            continue
        schema = json.loads(path.read_text())
        kind = schema.get("properties", {}).get("kind", {})
        if "enum" not in kind:  # only top-level resources carry apiVersion/kind enums
            continue
        reached: set[str] = set()
        _collect_refs(schema, defs, reached)
        standalone = _local_refs(schema)
        standalone["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        standalone["$defs"] = {name: _local_refs(defs[name]) for name in sorted(reached)}
        (dest / path.name).write_text(json.dumps(standalone, separators=(",", ":")))
        count += 1
    return count


# --- CRDs ---------------------------------------------------------------------------------------------

_KEEP = {
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "additionalProperties",
    "anyOf",
    "allOf",
    "oneOf",
    "not",
    "multipleOf",
}


def crd_to_jsonschema(node: Any, strict: bool = True) -> Any:
    """Convert one openAPIV3Schema node to JSON Schema (draft 7 keywords)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: crd_to_jsonschema(sub, strict) for name, sub in value.items()}
        elif key == "items":
            out[key] = crd_to_jsonschema(value, strict)
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else crd_to_jsonschema(value, strict)
        elif key in {"anyOf", "allOf", "oneOf"}:
            out[key] = [crd_to_jsonschema(sub, strict) for sub in value]
        elif key == "not":
            out[key] = crd_to_jsonschema(value, strict)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if strict and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def build_crds(out: Path, version: str) -> int:
    go = shutil.which("go")
    if go is None:
        sys.exit(
            "error: `go` not found; install Go >= 1.24 (https://go.dev/doc/install) to fetch the CNPG CRDs"
        )
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{CNPG_MODULE}@{version}"],
        check=False,
        capture_output=True,
        text=True,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        sys.exit(f"error: go mod download {CNPG_MODULE}@{version} failed: {info.get('Error') or proc.stderr}")
    bases = Path(info["Dir"]) / "config" / "crd" / "bases"
    count = 0
    for path in sorted(bases.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"].lower()
        for ver in crd["spec"]["versions"]:
            schema = crd_to_jsonschema(ver["schema"]["openAPIV3Schema"])
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            dest = out / "crds" / group
            dest.mkdir(parents=True, exist_ok=True)
            (dest / f"{kind}_{ver['name']}.json").write_text(json.dumps(schema, separators=(",", ":")))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kube-version", action="append", required=True)
    parser.add_argument("--cnpg-version", required=True)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    for version in args.kube_version:
        print(f"kubernetes {version}: {build_kubernetes(args.out, version)} resource schemas")
    print(f"cloudnative-pg {args.cnpg_version}: {build_crds(args.out, args.cnpg_version)} CRD schemas")


if __name__ == "__main__":
    main()
