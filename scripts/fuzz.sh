#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for N seconds each (default 30), one
# after the other, one job each. Used by CI; see docs/testing.md, "Fuzzing".
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly-only flags (-Zsanitizer=address ...). cargo-fuzz is installed from
# crates.io when missing. Each target starts from its committed seeds
# (fuzz/corpus/<target>/, read only) and writes what it finds to
# fuzz/target/corpus/<target>/ (not committed). A crash, a failed property,
# a unit slower than 10 s or more than 2 GiB of memory fails the target; its
# input is in fuzz/artifacts/<target>/. Exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-30}"
shift || true
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build
echo "fuzz.sh: built ${#targets[@]} targets in $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "target/corpus/$t" "corpus/$t"
    log="target/fuzz-$t.log"
    if cargo fuzz run "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
        echo "fuzz.sh: $t: ok, ${secs} s, ${execs:-?} runs, ${cov:-?}"
    else
        failed+=("$t")
        echo "fuzz.sh: $t: FAILED; the end of $log:"
        tail -n 60 "$log"
    fi
done

echo "fuzz.sh: ${#targets[@]} targets, ${secs} s each, in $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz.sh: no target failed"
