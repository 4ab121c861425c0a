#!/usr/bin/env bash
# A Kubernetes control plane on this machine: etcd, kube-apiserver and kube-controller-manager, inside a
# network namespace of their own that has only loopback.
#
#   cluster.sh start    start it (idempotent: a running one is left as it is), print how to use it
#   cluster.sh stop     stop every process in the namespace, delete the namespace and the state
#   cluster.sh status   exit 0 if it answers /readyz
#   cluster.sh exec -- CMD...   run CMD inside the namespace, with KUBECONFIG set
#
# Why a namespace: the API server dials Service IPs (10.x) for admission webhooks and aggregated APIs.
# From the machine's own namespace that traffic would leave the machine; inside this one it fails at
# once ("network is unreachable"). Everything that talks to the API server runs inside it too.
#
# What it is not: there is no kubelet, no container runtime, no scheduler and no network plugin. Objects
# are admitted and stored, controllers create ReplicaSets, Pods and ServiceAccounts, but Pods stay Pending
# and nothing in them ever runs.
#
# Environment: KUBE_BIN (folder with kube-apiserver and kube-controller-manager), NBP_CLUSTER_STATE (state
# folder; kubeconfig, certificates, logs, etcd data), NBP_CLUSTER_NETNS (namespace name; default derived
# from the state folder, so two checkouts never share one), NBP_CLUSTER_APISERVER_PORT (6443),
# NBP_CLUSTER_ETCD_PORT (2379), NBP_CLUSTER_ETCD_PEER_PORT (2380): ports inside the namespace only.
set -euo pipefail

STATE=${NBP_CLUSTER_STATE:?NBP_CLUSTER_STATE (the state folder)}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
NETNS=${NBP_CLUSTER_NETNS:-nbp-$(printf '%s' "$STATE" | sha1sum | cut -c1-10)}
API_PORT=${NBP_CLUSTER_APISERVER_PORT:-6443}
ETCD_PORT=${NBP_CLUSTER_ETCD_PORT:-2379}
ETCD_PEER_PORT=${NBP_CLUSTER_ETCD_PEER_PORT:-2380}
PKI=$STATE/pki
KUBECONFIG_FILE=$STATE/kubeconfig
SERVICE_RANGE=10.0.0.0/24

say() { echo "cluster: $*"; }
in_ns() { ip netns exec "$NETNS" "$@"; }

ns_exists() { [[ -e /run/netns/$NETNS ]]; }

ready() {
    ns_exists && [[ -f $PKI/admin.token ]] &&
        in_ns curl -sf --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
            "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

certificates() {
    [[ -f $PKI/.done ]] && return
    rm -rf "$PKI" && mkdir -p "$PKI" && chmod 700 "$PKI"
    (
        cd "$PKI"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=nbp-cluster-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        cat >apiserver.ext <<EOF
subjectAltName = IP:127.0.0.1, IP:10.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage = serverAuth
EOF
        openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -extfile apiserver.ext -out apiserver.crt 2>/dev/null
        # Service-account tokens: signed by the API server (and the controller-manager's token controller).
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        # Static bearer tokens: an administrator (system:masters) and the controller-manager's own user,
        # which the API server's bootstrap RBAC policy grants exactly what it needs.
        openssl rand -hex 24 >admin.token
        openssl rand -hex 24 >controller-manager.token
        {
            echo "$(cat admin.token),nbp-admin,nbp-admin,system:masters"
            echo "$(cat controller-manager.token),system:kube-controller-manager,system:kube-controller-manager"
        } >tokens.csv
        chmod 600 ./*.key ./*.token tokens.csv
        touch .done
    )
}

kubeconfig() { # kubeconfig FILE TOKEN
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: nbp
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: user
    user:
      token: $2
contexts:
  - name: nbp
    context: {cluster: nbp, user: user, namespace: default}
current-context: nbp
EOF
    chmod 600 "$1"
}

spawn() { # spawn NAME CMD... : a process of its own session inside the namespace, pid in $STATE/NAME.pid
    local name=$1
    shift
    in_ns setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/$name.pid"
}

alive() { [[ -f $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

wait_for() { # wait_for WHAT SECONDS CHECK...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    say "error: $what did not come up within ${seconds}s; its log:" >&2
    tail -n 30 "$STATE/$what.log" >&2 || true
    return 1
}

etcd_healthy() { in_ns curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1; }

start() {
    if ready && alive kube-controller-manager; then
        say "already running (namespace $NETNS, kubeconfig $KUBECONFIG_FILE)"
        return
    fi
    stop quiet
    local bin=${KUBE_BIN:?KUBE_BIN (folder with kube-apiserver and kube-controller-manager)}
    command -v etcd >/dev/null || { say "error: etcd not found: apt-get install -y etcd-server" >&2; exit 1; }
    local t0=$SECONDS
    mkdir -p "$STATE"
    certificates
    ip netns add "$NETNS"
    in_ns ip link set lo up

    spawn etcd etcd --name nbp --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "nbp=http://127.0.0.1:$ETCD_PEER_PORT" --quota-backend-bytes 1073741824
    wait_for etcd 30 etcd_healthy

    spawn kube-apiserver "$bin/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
        --authorization-mode RBAC \
        --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
        --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
        --service-cluster-ip-range "$SERVICE_RANGE" \
        --endpoint-reconciler-type none \
        --profiling=false
    wait_for kube-apiserver 90 ready

    kubeconfig "$STATE/controller-manager.kubeconfig" "$(cat "$PKI/controller-manager.token")"
    spawn kube-controller-manager "$bin/kube-controller-manager" \
        --kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 0 \
        --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
        --use-service-account-credentials \
        --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
        --service-cluster-ip-range "$SERVICE_RANGE" \
        --leader-elect=false --profiling=false
    kubeconfig "$KUBECONFIG_FILE" "$(cat "$PKI/admin.token")"
    # The controller-manager is up once it has created the `default` ServiceAccount (without it, Pods are
    # refused).
    wait_for kube-controller-manager 60 default_service_account
    say "ready in $((SECONDS - t0)) s: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1 inside" \
        "network namespace $NETNS (loopback only)"
    say "kubeconfig $KUBECONFIG_FILE (administrator); run commands inside the namespace with" \
        "\`make cluster-exec CMD='helm list -A'\` or \`ip netns exec $NETNS ...\`"
    say "not a node: no kubelet, no container runtime, no scheduler: Pods stay Pending"
}

default_service_account() {
    alive kube-controller-manager &&
        in_ns curl -sf --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
            "https://127.0.0.1:$API_PORT/api/v1/namespaces/default/serviceaccounts/default" >/dev/null 2>&1
}

stop() {
    local quiet=${1:-}
    local pids=() was_running=
    if ns_exists || alive kube-apiserver || alive etcd; then was_running=1; fi
    if ns_exists; then
        # Every process in the namespace is one this script started (the namespace is its own).
        mapfile -t pids < <(ip netns pids "$NETNS")
    fi
    for name in kube-controller-manager kube-apiserver etcd; do
        if alive "$name"; then pids+=("$(cat "$STATE/$name.pid")"); fi
    done
    if [[ ${#pids[@]} -gt 0 ]]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 100); do
            local left=0
            for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
            [[ $left == 0 ]] && break
            sleep 0.1
        done
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    if ns_exists; then ip netns del "$NETNS"; fi
    rm -rf "$STATE/etcd" "$STATE"/*.pid "$STATE"/*.kubeconfig "$KUBECONFIG_FILE"
    [[ -n $quiet ]] && return
    if [[ -n $was_running ]]; then say "stopped (namespace $NETNS deleted, etcd data removed)"; else say "not running"; fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) ready ;;
exec)
    shift
    [[ ${1:-} == -- ]] && shift
    ready || { say "error: not running; \`make cluster\` starts it" >&2; exit 1; }
    KUBECONFIG=$KUBECONFIG_FILE exec ip netns exec "$NETNS" "$@"
    ;;
*)
    echo "usage: $0 start|stop|status|exec -- CMD..." >&2
    exit 2
    ;;
esac
