#!/usr/bin/env bash
# The project's whole test run: format, lints, unit/integration tests, release build, then the
# end-to-end tests against the release binary with real SIP peers (pjsua2, baresip).
# Needs: cargo (with rustfmt, clippy), the nightly toolchain and cargo-fuzz (for
# scripts/fuzz-smoke.sh), python3 with pytest and pjsua2-python, baresip, sox, espeak-ng. .ci/run installs them on a fresh Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== fuzz smoke (every fuzz target for a few seconds on its seeds)"
scripts/fuzz-smoke.sh
echo "== cargo build --release"
cargo build --release
echo "== end-to-end (pytest)"
export BELTEKEN_BIN="${BELTEKEN_BIN:-${CARGO_TARGET_DIR:-target}/release/belteken}"
exec python3 -m pytest -v tests/e2e
