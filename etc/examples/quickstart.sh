#!/usr/bin/env bash
# ARC quickstart from a source checkout, without any network: builds arcd, runs it on the
# embedded default (SQLite, API server on loopback) with the example Order in
# etc/examples/quickstart/orders, which moves an OCI image and a file from directories shipped in
# etc/examples/quickstart/source into a local mirror directory, and shows the result with
# `arcd status` and (when installed) kubectl.
#
# Usage: etc/examples/quickstart.sh            (state in a new /tmp/arc-quickstart.* directory)
#        ARC_QUICKSTART_DIR=DIR etc/examples/quickstart.sh
# Exit status 0 when every artifact of the Order succeeded.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${ARC_QUICKSTART_DIR:-$(mktemp -d /tmp/arc-quickstart.XXXXXX)}"
api_port="${ARC_QUICKSTART_API_PORT:-16443}"
health_port="${ARC_QUICKSTART_HEALTH_PORT:-19464}"

if ! command -v protoc >/dev/null; then
    echo "==> installing protobuf-compiler (needed to build the etcd client)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null
fi
echo "==> building arcd"
(cd "$repo" && cargo build -q -p arcd)
arcd="${CARGO_TARGET_DIR:-$repo/target}/debug/arcd"

echo "==> preparing $work"
mkdir -p "$work/orders" "$work/mirror"
sed -e "s|/usr/share/arc/examples|$here|g" -e "s|/var/lib/arc/mirror|$work/mirror|g" \
    "$here/quickstart/orders/quickstart.yaml" > "$work/orders/quickstart.yaml"
"$arcd" validate --config /dev/null "$work/orders"

echo "==> starting arcd run (API https://127.0.0.1:$api_port, health http://127.0.0.1:$health_port)"
"$arcd" run --data-dir "$work/data" --resource-dir "$work/orders" \
    --listen "127.0.0.1:$api_port" --health-listen "127.0.0.1:$health_port" \
    > "$work/arcd.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

ready=""
for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then echo "arcd exited:"; cat "$work/arcd.log"; exit 1; fi
    if "$arcd" status --data-dir "$work/data" -o json 2>/dev/null | grep -q '"phase": "\(Succeeded\|Failed\|Invalid\)"'; then
        ready=1; break
    fi
    sleep 1
done
[ -n "$ready" ] || { echo "the Order did not finish within 120s"; cat "$work/arcd.log"; exit 1; }

echo "==> arcd status"
"$arcd" status --data-dir "$work/data" && ok=0 || ok=$?

if command -v kubectl >/dev/null; then
    echo "==> kubectl get orders,artifactworkflows"
    kubectl --kubeconfig "$work/data/admin.kubeconfig" get orders,artifactworkflows || echo "(kubectl failed)"
fi

echo "==> what arrived in $work/mirror"
find "$work/mirror" -maxdepth 2 | sort
if command -v skopeo >/dev/null && [ -d "$work/mirror/hello" ]; then
    skopeo inspect --format '{{.Digest}}' "oci:$work/mirror/hello:1.0"
fi
echo "arcd log: $work/arcd.log; admin kubeconfig: $work/data/admin.kubeconfig"
exit "$ok"
