#!/usr/bin/env bash
# Kernel discovery benchmarks (issues 9 and 19): `sifkernel kernel list` and
# `sifkernel kernel check` over 500 container kernels in 5 JUPYTER_PATH
# entries, against `jupyter kernelspec list` on the same layout in the same
# run: Debian 12's jupyter_client 7 (this machine), and, as root where
# testcluster/debian13/build has made its chroot, Debian 13's
# jupyter_client 8 / jupyter_core 5 on Python 3.13, with sifkernel run in
# that chroot too (each side pays the same unshare, bind mount and chroot).
# Medians of ROUNDS (default 5). It prints a table and asserts nothing.
# Targets: each sifkernel command at most 100 ms, and faster than Jupyter's.
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
echo "model here: $("$bin" kernel list | tail -1)"
printf '\n%-50s %12s %12s %8s %s\n' benchmark sifkernel jupyter ratio target
printf '%-50s %12s %12s %8s %s\n' "Debian 12: kernel list vs jupyter kernelspec list" "$(ms "$list")" "$(ms "$jup")" "$(ratio "$list" "$jup")" "<= 100 ms, < 1"
printf '%-50s %12s %12s %8s %s\n' "Debian 12: kernel check vs jupyter kernelspec list" "$(ms "$check")" "$(ms "$jup")" "$(ratio "$check" "$jup")" "<= 100 ms, < 1"

# Debian 13, in its chroot: the layout and bin/ bound in at the same paths.
d13=${SIFKERNEL_DEBIAN13_ROOT:-/var/cache/sifkernel/debian13}
if [ "$(id -u)" != 0 ] || [ ! -e "$d13/.sifkernel-stamp" ]; then
	echo "Debian 13: no chroot at $d13 (testcluster/debian13/build, as root): not measured"
	exit 0
fi
in13() { # in13 CMD...: CMD in the chroot, in this layout's environment
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation private -- /bin/sh -c '
		r=$1 work=$2 bin=$3; shift 3
		for d in "$work" "$bin"; do mkdir -p "$r$d" && mount --bind "$d" "$r$d" || exit 125; done
		exec chroot "$r" /usr/bin/env -i HOME="$HOME" JUPYTER_PATH="$JUPYTER_PATH" SIFKERNEL_CONFIG="$SIFKERNEL_CONFIG" PATH=/usr/bin:/bin "$@"' \
		sh "$d13" "$work" "$top/bin" "$@"
}
[ "$(in13 jupyter kernelspec list 2>/dev/null | grep -c "$work")" = 500 ] || { echo "Debian 13's jupyter does not list the 500 kernels" >&2; exit 1; }
[ "$(in13 "$bin" kernel list --json | grep -c '"jupyter_lists": true')" -ge 500 ] || { echo "sifkernel in Debian 13 does not list the 500 kernels" >&2; exit 1; }
echo "model in Debian 13: $(in13 "$bin" kernel list | tail -1)"
jup13=$(time_of in13 jupyter kernelspec list)
list13=$(time_of in13 "$bin" kernel list)
check13=$(time_of in13 "$bin" kernel check)
printf '%-50s %12s %12s %8s %s\n' "Debian 13: kernel list vs jupyter kernelspec list" "$(ms "$list13")" "$(ms "$jup13")" "$(ratio "$list13" "$jup13")" "<= 100 ms, < 1"
printf '%-50s %12s %12s %8s %s\n' "Debian 13: kernel check vs jupyter kernelspec list" "$(ms "$check13")" "$(ms "$jup13")" "$(ratio "$check13" "$jup13")" "<= 100 ms, < 1"
for d in "$work" "$top/bin"; do rmdir -p "$d13$d" 2>/dev/null || true; done
