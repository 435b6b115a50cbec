#!/usr/bin/env bash
# Kernel discovery benchmarks (issue 9): `sifkernel kernel list` and
# `sifkernel kernel check` over 500 container kernels in 5 JUPYTER_PATH
# entries, against `jupyter kernelspec list` (Debian's jupyter_client) on
# the same layout in the same run. Medians of ROUNDS (default 5). It prints
# a table and asserts nothing. Targets: each sifkernel command at most
# 100 ms, and faster than Jupyter's.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
mk="$top/bin/mkimage"
rounds=${ROUNDS:-5}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/sifkernel-kbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
command -v jupyter-kernelspec >/dev/null || { echo "jupyter-kernelspec missing: apt-get install jupyter-client" >&2; exit 1; }

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }

# 5 data dirs x 100 container kernels, one real SIF they all use.
printf 'x%.0s' $(seq 1 4096) >"$work/rootfs"
"$mk" -rootfs "$work/rootfs" "$work/img.sif"
path=""
for d in 1 2 3 4 5; do
	for k in $(seq 1 100); do
		dir="$work/jp$d/kernels/k$d-$k"
		mkdir -p "$dir"
		printf '{"argv": ["/usr/bin/apptainer", "exec", "%s", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "k%s-%s", "language": "python"}\n' \
			"$work/img.sif" "$d" "$k" >"$dir/kernel.json"
	done
	path="$path${path:+:}$work/jp$d"
done
mkdir -p "$work/home"
export HOME="$work/home" JUPYTER_PATH="$path"
printf '[apptainer]\nsearch = []\n' >"$work/config.toml"
export SIFKERNEL_CONFIG="$work/config.toml"

time_of() { # time_of CMD...: median wall time in ns over $rounds runs
	local _ t0
	for _ in $(seq 1 "$rounds"); do
		t0=$(now)
		"$@" >/dev/null 2>&1 || true
		echo $(($(now) - t0))
	done | median
}
[ "$("$bin" kernel list --json | grep -c '"jupyter_lists": true')" -ge 500 ] || { echo "sifkernel does not list the 500 kernels" >&2; exit 1; }
[ "$(jupyter-kernelspec list 2>/dev/null | grep -c "$work")" = 500 ] || { echo "jupyter does not list the 500 kernels" >&2; exit 1; }

jup=$(time_of jupyter-kernelspec list)
list=$(time_of "$bin" kernel list)
check=$(time_of "$bin" kernel check)
echo "sifkernel kernel benchmarks on $(uname -n): $(nproc) cores, $(date -u +%F); 500 kernels in 5 JUPYTER_PATH entries, median of $rounds"
printf '\n%-44s %12s %12s %8s %s\n' benchmark sifkernel jupyter ratio target
printf '%-44s %12s %12s %8s %s\n' "kernel list vs jupyter kernelspec list" "$(ms "$list")" "$(ms "$jup")" "$(ratio "$list" "$jup")" "<= 100 ms, < 1"
printf '%-44s %12s %12s %8s %s\n' "kernel check vs jupyter kernelspec list" "$(ms "$check")" "$(ms "$jup")" "$(ratio "$check" "$jup")" "<= 100 ms, < 1"
