#!/usr/bin/env bash
# How cost grows with work (issue 11), all in one run, root: the hooks with
# 1, 10 and 100 kernels (hooks.sh); cache ls and gc with 1,000 and 10,000
# entries (Go benchmarks); one stager of a 256 MiB image against 8 and 32
# stagers of it at once (one copies, the rest wait and use it; the source
# in the page cache). Prints tables; asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
mk="$top/bin/mkimage"
[ "$(id -u)" = 0 ] || { echo "scaling.sh needs root (the hooks)" >&2; exit 1; }
now() { date +%s%N; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

echo "== hooks with 1, 10 and 100 kernels (medians of 11)"
for n in 1 10 100; do
	KERNELS=$n ROUNDS=11 "$top/testcluster/bench/hooks.sh" | grep -E '^(Prolog|warm|Epilog)'
done

echo
echo "== cache ls and gc with 1,000 and 10,000 entries (five refs each)"
(cd "$top" && go test -run '^$' -bench 'List|GC' -benchtime 10x ./wrapper/cache | awk '/^Benchmark/ {printf "%-40s %12s\n", $1, sprintf("%.1f ms", $3/1e6)}')

echo
echo "== concurrent stagers of one 256 MiB image"
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/sifkernel-scaling.XXXXXX")
trap 'rm -rf "$work"' EXIT
head -c 256M /dev/urandom >"$work/rootfs"
"$mk" -rootfs "$work/rootfs" "$work/src.sif"
rm -f "$work/rootfs"
export TMPDIR="$work"
cat "$work/src.sif" >/dev/null # every round reads the source from the page cache: this measures
one=                           # the stagers' coordination, not the disk (cache.sh compares with cp)
for k in 1 8 32; do
	printf '[cache]\ndir = "%s/cache-%s"\nstage_timeout = "600s"\nreserve = "0B"\nuser_quota = "100%%"\n' "$work" "$k" >"$work/config.toml"
	export SIFKERNEL_CONFIG="$work/config.toml"
	t0=$(now)
	for i in $(seq "$k"); do "$bin" stage --json --job "$((1000 + i))" "$work/src.sif" >"$work/s-$k-$i.json" & done
	wait
	t=$(($(now) - t0))
	[ -n "$one" ] || one=$t
	copies=$(grep -l '"copied": true' "$work"/s-"$k"-*.json | wc -l)
	printf '%-40s %12s %8s   copies: %s\n' "$k stagers at once" "$(ms "$t")" "$(ratio "$t" "$one")" "$copies"
	rm -rf "$work/cache-$k"
done
