#!/usr/bin/env bash
# A short run of every fuzz target (fuzz/): builds them all once with cargo-fuzz (nightly,
# libFuzzer, AddressSanitizer), then runs each for a few seconds on its seed corpus
# (fuzz/corpus/<target>) and fails on any crash, leak, timeout or out-of-memory. Needs the
# nightly toolchain and cargo-fuzz; .ci/run installs both. Long runs: see SECURITY.md.
#   FUZZ_SMOKE_SECONDS  seconds per target (default 4)
#   FUZZ_TARGET_DIR     build directory (default fuzz/target, apart from the stable builds,
#                       whose compiler flags differ)
#   BELTEKEN_NO_FUZZ    set (by .ci/run, when the toolchain could not be installed): skip, and
#                       say so
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${BELTEKEN_NO_FUZZ:-}" ]; then
    echo "fuzz smoke: SKIPPED (no nightly toolchain or cargo-fuzz on this machine)"
    exit 0
fi

seconds="${FUZZ_SMOKE_SECONDS:-4}"
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"

echo "== cargo fuzz build"
cargo +nightly fuzz build --target-dir "$target_dir"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
    # New inputs go to a scratch corpus; the committed seeds are only read.
    mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
    if "$target_dir/$triple/release/$target" \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$target/artifacts/" \
        "$work/$target/corpus" "fuzz/corpus/$target" >"$work/$target/log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target/log")
        echo "fuzz $target: ${runs:-?} runs in ${seconds} s, no crash"
    else
        echo "fuzz $target: FAILED"
        tail -n 60 "$work/$target/log"
        for a in "$work/$target/artifacts"/*; do
            [ -f "$a" ] && echo "reproducer $(basename "$a") (base64): $(base64 -w0 "$a")"
        done
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz smoke: crashes in ${failed[*]}"
    exit 1
fi
echo "fuzz smoke: every target ran without a crash"
