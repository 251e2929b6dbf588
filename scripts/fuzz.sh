#!/usr/bin/env bash
# Runs every fuzz target of the module (each `func FuzzXxx` in a _test.go
# file) for a while, one after the other, and sums up: target, executions,
# result. docs/fuzzing.md lists the targets and what they check.
#
#   scripts/fuzz.sh                  # each target 60s
#   scripts/fuzz.sh -t 10m           # each target 10 minutes
#   scripts/fuzz.sh -t 30s Gops Apply  # the targets whose name contains Gops or Apply
#
# -t is go test's -fuzztime (a duration, or Nx for N executions). FUZZ_PARALLEL
# sets the workers per target (go test's -parallel; default GOMAXPROCS). A
# target that fails leaves its input in testdata/fuzz/<target>/ of its
# package (go test prints the command that runs it again), and the script
# exits 1 once all have run. Without -fuzz, go test runs the seeds of every
# target as plain tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

fuzztime=60s
while getopts "t:h" opt; do
  case $opt in
    t) fuzztime=$OPTARG ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

parallel=()
[ -z "${FUZZ_PARALLEL:-}" ] || parallel=(-parallel "$FUZZ_PARALLEL")

# Package directory and target name of every fuzz target, sorted.
mapfile -t targets < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#\1 \2#; s#^[^ /]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#. \1#' | sort -u)

selected=()
for t in "${targets[@]}"; do
  name=${t#* }
  if [ $# -eq 0 ]; then
    selected+=("$t")
  else
    for want in "$@"; do
      if [[ $name == *"$want"* ]]; then selected+=("$t"); break; fi
    done
  fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "no fuzz target matches: $*" >&2; exit 2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
failed=0
echo "$(go version); -fuzztime $fuzztime each; ${#selected[@]} targets" >&2
for t in "${selected[@]}"; do
  dir=${t% *} name=${t#* }
  echo "== ./$dir $name" >&2
  status=ok
  if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "${parallel[@]}" "./$dir" >"$log" 2>&1; then
    status=FAILED
    failed=1
    cat "$log" >&2
  fi
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  summary+=("$(printf '%-28s %-24s %12s  %s' "./$dir" "$name" "${execs:-?}" "$status")")
done
printf '%-28s %-24s %12s  %s\n' package target execs result
printf '%s\n' "${summary[@]}"
exit $failed
