#!/usr/bin/env bash
# Runs one cargo-fuzz target of the Vorgang Import Service (see fuzz/README.md).
#
#   fuzz/run.sh TARGET [SECONDS | -runs=N] [more libFuzzer flags...]
#
# TARGET: parse_request | token_string | token_structured | token_endpoint. Default: 60 seconds.
# The committed seeds (fuzz/seeds/TARGET) are copied into the work corpus fuzz/corpus/TARGET,
# which grows and is not committed; crashes land in fuzz/artifacts/TARGET/. One process, one
# core, lowest priority: the machine is shared.
#
# Environment: FUZZ_SANITIZER (default none: the code is safe Rust; address for ASan),
# FUZZ_NICE (default 19).
set -euo pipefail
cd "$(dirname "$0")"

targets=(parse_request token_string token_structured token_endpoint)
usage() {
  echo "usage: $0 TARGET [SECONDS | -runs=N] [libFuzzer flags...]; TARGET: ${targets[*]}" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
target=$1
shift
[[ " ${targets[*]} " == *" $target "* ]] || usage
limit=${1:-60}
[[ $# -ge 1 ]] && shift
case $limit in
  -runs=[0-9]*) limit_flag=$limit ;;
  '' | *[!0-9]*) usage ;;
  *) limit_flag=-max_total_time=$limit ;;
esac

# cargo fuzz needs nightly features; the pinned toolchain is stable.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

corpus=corpus/$target
mkdir -p "$corpus" "artifacts/$target" logs
cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true
dict=()
[[ -f dict/$target.dict ]] && dict=(-dict="dict/$target.dict")

log=logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log
echo "== $target: corpus $corpus ($(ls "$corpus" | wc -l) files), $limit_flag, log $log"
status=0
# One fuzzing process on one core (what -jobs=1 -workers=1 would give, without libFuzzer's
# fixed fuzz-0.log, so that two targets can run side by side).
nice -n "${FUZZ_NICE:-19}" cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" \
  "$target" "$corpus" -- \
  "$limit_flag" -timeout=30 -print_final_stats=1 "${dict[@]}" "$@" >"$log" 2>&1 ||
  status=$?
# The last status line (executions, coverage, features, corpus) and the final stats.
grep -E '^#[0-9]+' "$log" | tail -n 1 || true
grep -E '^(Done|stat::)' "$log" || true
grep -E 'ERROR|panicked|Test unit written' "$log" || true
exit "$status"
