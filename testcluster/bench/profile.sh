#!/usr/bin/env bash
# What the profile.d snippet (slurm/profile.d/sifkernel.sh) costs a login
# shell (issue 14), measured in this one run: sh sourcing the snippet
# against sh doing nothing, medians of ROUNDS (default 21), on
#   a login node     (no <cache.dir>/jobs: one test of a directory);
#   a compute node   outside any job (sifkernel env runs, finds nothing);
#   a compute node   in a job reached by ssh (sifkernel env finds it, exports).
# Root (it makes a root-owned cache root, as the hooks do). Asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
rounds=${ROUNDS:-21}
[ "$(id -u)" = 0 ] || { echo "profile.sh needs root" >&2; exit 1; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/sifkernel-profile.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
printf '[cache]\ndir = "%s/cache"\n' "$work" >"$work/config.toml"
export SIFKERNEL_CONFIG="$work/config.toml" HOME="$work"
sed -e "s#^sifkernel_bin=.*#sifkernel_bin=$bin#" -e "s#^sifkernel_jobs=.*#sifkernel_jobs=$work/cache/jobs#" \
	"$top/slurm/profile.d/sifkernel.sh" >"$work/snippet.sh"
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_of() {
	local _ t0
	for _ in $(seq 1 "$rounds"); do
		t0=$(now)
		env -u PATH /bin/sh -c "$1" >/dev/null 2>&1
		echo $(($(now) - t0))
	done | median
}
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }
base=$(time_of ':')
login=$(time_of ". $work/snippet.sh")
mkdir -p "$work/cache/jobs" && chmod 755 "$work/cache" "$work/cache/jobs"
nojob=$(time_of ". $work/snippet.sh")
mkdir -p "$work/cache/jobs/123/jupyter/kernels" && echo '{}' >"$work/cache/jobs/123/node.json"
job=$(time_of ". $work/snippet.sh; test -n \"\$SIFKERNEL_JOB_DIR\"")
echo "profile.d snippet cost on $(uname -n): $(nproc) cores, $(date -u +%F); medians of $rounds, each minus sh alone ($(ms "$base"))"
printf '\n%-44s %10s %s\n' situation added target
printf '%-44s %10s %s\n' "login node (no cache root)" "$(ms $((login - base)))" "< 1 ms"
printf '%-44s %10s %s\n' "compute node, no job of yours" "$(ms $((nojob - base)))" "a few ms"
printf '%-44s %10s %s\n' "compute node, in a job reached by ssh" "$(ms $((job - base)))" "a few ms"
