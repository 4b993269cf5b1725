#!/usr/bin/env bash
# Fuzzes detbal's input layer with cargo-fuzz (issue 8: bad input gives an error, never a panic).
#
#   [FUZZ_JOBS=N] scripts/fuzz.sh [SECONDS] [TARGET[=SECONDS]...]
#
# Runs each target (default: all five, see fuzz/fuzz_targets/) for SECONDS (default 60) or its
# own SECONDS, with -max_total_time, FUZZ_JOBS targets at a time (default 1: one core each);
# prints the executions per target and the total; exits non-zero if any crash artifact (crash-,
# oom-, timeout-, leak-*) is under fuzz/artifacts/.
# Example, slow targets longer: FUZZ_JOBS=2 scripts/fuzz.sh 60 parquet_reader=300 graph_builder=30
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Its nightly flags are allowed on a
# stable toolchain with RUSTC_BOOTSTRAP=1, set here. Targets build with debug assertions and
# overflow checks (-a), so an arithmetic overflow is a crash. New inputs go to
# fuzz/corpus/<target> (ignored by git); the committed seeds are fuzz/seeds/<target>.
#
# CI does not run this: it takes minutes per target. A crash's artifact is a file to reproduce
# with `cargo fuzz run -a <target> <artifact>`; add it to tests/it/fuzz_regressions.rs once fixed.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

default_seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    default_seconds=$1
    shift
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(parquet_reader csv_reader json_reader graph_builder compare_reader)
fi

# The file targets write their input under $TMPDIR: a scratch directory for this run, in memory
# where possible (a disk-backed one makes them several times slower).
scratch=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

for spec in "${targets[@]}"; do
    cargo fuzz build -a "${spec%%=*}"
done

# Fuzzes one target into $scratch/<target>.log; a crash stops it, the others still run.
fuzz_one() {
    local target=$1 seconds=$2
    mkdir -p "fuzz/corpus/$target"
    echo "== $target: ${seconds}s"
    cargo fuzz run -a "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$scratch/$target.log" 2>&1 ||
        echo "== $target: stopped with a failure, see the artifact below"
}

jobs=${FUZZ_JOBS:-1}
for spec in "${targets[@]}"; do
    seconds=$default_seconds
    [[ $spec == *=* ]] && seconds=${spec#*=}
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do
        wait -n
    done
    fuzz_one "${spec%%=*}" "$seconds" &
done
wait

echo
total=0
for spec in "${targets[@]}"; do
    target=${spec%%=*}
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log" | tail -n 1)
    grep -E '^(==[0-9]+==|SUMMARY|thread )' "$scratch/$target.log" || true
    printf '%-16s %12d executions\n' "$target" "${runs:-0}"
    total=$((total + ${runs:-0}))
done
printf '%-16s %12d executions\n' total "$total"

artifacts=$(find fuzz/artifacts -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \
    -o -name 'leak-*' \) 2>/dev/null | sort)
if [[ -n $artifacts ]]; then
    echo "crash artifacts:"
    echo "$artifacts"
    exit 1
fi
