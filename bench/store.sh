#!/usr/bin/env bash
# Durable signatures per second through the store's group commit, SQLite then PostgreSQL
# (when BELTEKEN_TEST_PG_URL is set, as .ci/run sets it), with 1, 16, 128 and 512 concurrent
# signers. Bounded: a fixed number of signatures per run and a timeout per run. Debug builds
# are not representative, so this builds the bench with optimisations (its own profile dir).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --profile bench -p store-bench
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/store-bench"
[ -x "$bin" ] || bin="$target/bench/store-bench"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for signers in 1 16 128 512; do
    count=$(( signers == 1 ? 500 : 5000 ))
    timeout 300 "$bin" sqlite "$dir" "$signers" "$count"
done
if [ -n "${BELTEKEN_TEST_PG_URL:-}" ]; then
    for signers in 1 16 128 512; do
        count=$(( signers == 1 ? 500 : 5000 ))
        timeout 300 "$bin" pg "$BELTEKEN_TEST_PG_URL" "$signers" "$count"
    done
else
    echo "BELTEKEN_TEST_PG_URL not set: PostgreSQL skipped"
fi
