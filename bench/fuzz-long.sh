#!/usr/bin/env bash
# Runs every fuzz target of the repository (each `func Fuzz...` in a
# _test.go file) for FUZZTIME (default 10m) each, one after the other, and
# writes a summary to bench/out/fuzz-long.md for RELIABILITY.md.
#
# A failing input is written by go test to the package's
# testdata/fuzz/<Target>/ directory, where every later `go test` runs it as a
# regression input: commit it with the fix. The script goes on with the other
# targets and exits 1 at the end if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10m}
out=bench/out/fuzz-long.md
mkdir -p bench/out
log=$(mktemp)
trap 'rm -f "$log"' EXIT

commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
{
	echo "Command: \`make fuzz-long FUZZTIME=$FUZZTIME\` at commit \`$commit\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs."
	echo
	echo "| package | target | result | last progress line |"
	echo "|---|---|---|---|"
} >"$out"

failed=()
while IFS= read -r file; do
	dir=./$(dirname "${file#./}")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "== $dir $target ($FUZZTIME)"
		if "$GO" test "$dir" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" 2>&1 | tee "$log"; then
			result=ok
		else
			result="**FAILED** (input in $dir/testdata/fuzz/$target)"
			failed+=("$dir $target")
		fi
		last=$(grep -E '^fuzz: elapsed' "$log" | tail -1)
		echo "| \`$dir\` | \`$target\` | $result | ${last:-—} |" >>"$out"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/out/' | sort)

echo
cat "$out"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz-long: failed: %s\n' "${failed[@]}"
	exit 1
fi
