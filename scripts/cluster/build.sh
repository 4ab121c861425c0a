#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager from the k8s.io/kubernetes Go module into $OUT.
#
# `go install k8s.io/kubernetes/cmd/...@version` refuses the module (its go.mod replaces k8s.io/* with
# ./staging, which the module zip lacks), so: copy the downloaded module somewhere writable, drop go.work
# and the replace block, pin the staging modules to their published v0.<minor>.<patch> releases, and build.
# The -X flags make /version report the real version (charts' kubeVersion checks read it).
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:?KUBE_VERSION (e.g. v1.34.4)}
OUT=${OUT:?OUT (the folder the binaries go to)}
BINARIES=${BINARIES:-kube-apiserver kube-controller-manager}

command -v go >/dev/null || { echo "error: \`go\` not found; install Go >= 1.24 (https://go.dev/doc/install)" >&2; exit 1; }

missing=()
for b in $BINARIES; do [[ -x $OUT/$b ]] || missing+=("$b"); done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi

staging_version="v0.${KUBE_VERSION#v1.}"
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
src="$OUT/src"
mkdir -p "$OUT"

if [[ ! -f $src/.prepared ]]; then
    echo "cluster: downloading k8s.io/kubernetes@$KUBE_VERSION (module cache: $(go env GOMODCACHE))"
    dir=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [[ -d $dir ]] || { echo "error: go mod download k8s.io/kubernetes@$KUBE_VERSION gave no folder" >&2; exit 1; }
    rm -rf "$src"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    rm -f "$src/go.work" "$src/go.work.sum"
    # Drop the `replace ( ... )` block and pin every `k8s.io/<x> v0.0.0` to its published release.
    sed -i -e '/^replace (/,/^)/d' -e "s#^\(\t*k8s.io/[a-z0-9-]*\) v0.0.0\$#\1 $staging_version#" "$src/go.mod"
    touch "$src/.prepared"
fi

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
for b in "${missing[@]}"; do
    echo "cluster: building $b $KUBE_VERSION into $OUT (about 10 min on 2 idle cores with empty Go caches, 2 min with warm ones)"
    start=$SECONDS
    (cd "$src" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
        go build -p "${GO_BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "../$b.tmp" "./cmd/$b")
    mv "$OUT/$b.tmp" "$OUT/$b"
    echo "cluster: built $b in $((SECONDS - start)) s"
done
