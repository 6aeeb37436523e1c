#!/bin/sh
# Installs ARC's ClusterWorkflowTemplates (arc-oci, arc-helm, arc-file) for the Argo executor.
#
#   packaging/argo/install.sh IMAGE            render with IMAGE and `kubectl apply -f -`
#   packaging/argo/install.sh --print IMAGE    only print the rendered manifests
#
# IMAGE is the container image holding `arcd` at /usr/bin/arcd, e.g.
# registry.example.com/arc/arcd:0.1.0. Extra kubectl arguments can be given in KUBECTL_ARGS
# (e.g. KUBECTL_ARGS="--context prod").
set -eu

print_only=false
if [ "${1:-}" = "--print" ]; then
    print_only=true
    shift
fi
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 [--print] IMAGE" >&2
    exit 2
fi
image=$1
case "$image" in
    *[!A-Za-z0-9._:/@-]*)
        echo "$0: image reference '$image' has characters an image reference cannot have" >&2
        exit 2
        ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
render() {
    for template in arc-oci arc-helm arc-file; do
        echo "---"
        sed "s|@ARC_IMAGE@|$image|g" "$here/$template.yaml"
    done
}

if $print_only; then
    render
else
    # shellcheck disable=SC2086
    render | kubectl apply ${KUBECTL_ARGS:-} -f -
fi
