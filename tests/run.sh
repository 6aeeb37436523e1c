#!/usr/bin/env bash
# Runs every ARC test on a Debian or Ubuntu machine: installs the real servers and clients the
# tests use (etcd, an OCI registry, skopeo, protoc, ...), then runs the whole cargo test suite.
# Usage: tests/run.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/arc-target}"
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
