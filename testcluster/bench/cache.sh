#!/usr/bin/env bash
# Node-cache benchmarks (issue 3). Every ratio compares two things measured
# in this same run on this same machine: staging against cp of the same file
# on the same filesystem, warm staging against `sifkernel version`, eight
# concurrent stagers against one. It prints a table; it asserts nothing, so
# it never makes CI flaky. Needs ~12 GiB free under BENCH_DIR (default /var/tmp).
#   testcluster/bench/cache.sh            # 1 GiB and 4 GiB images
#   BENCH_SIZES="1" ROUNDS=3 testcluster/bench/cache.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
mk="$top/bin/mkimage"
sizes=${BENCH_SIZES:-"1 4"}
rounds=${ROUNDS:-3}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/sifkernel-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
config() { # a config whose cache is $1
	printf '[cache]\ndir = "%s"\nstage_timeout = "600s"\nreserve = "0B"\nuser_quota = "100%%"\n' "$1" >"$work/config.toml"
}
export SIFKERNEL_CONFIG="$work/config.toml" TMPDIR="$work"

image() { # image SIZE_GIB PATH: a real SIF around SIZE GiB of random data
	head -c "$1G" /dev/urandom >"$work/rootfs"
	"$mk" -rootfs "$work/rootfs" "$2"
	rm -f "$work/rootfs"
}

echo "sifkernel cache benchmarks on $(uname -n): $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(df -h "$work" | awk 'NR==2 {print $1 " (" $2 ")"}'), $(date -u +%F)"
echo "drop_caches: $(if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then echo yes; else echo "no (page cache warm for both sides)"; fi)"
printf '\n%-44s %12s %12s %8s %s\n' benchmark sifkernel baseline ratio target

declare -A one_stager
for g in $sizes; do
	src="$work/src-${g}g.sif"
	image "$g" "$src"
	cp_t=() st_t=()
	for r in $(seq "$rounds"); do
		drop_caches
		t0=$(now); cp "$src" "$work/cp.sif"; sync "$work/cp.sif"; t1=$(now)
		cp_t+=($((t1 - t0))); rm -f "$work/cp.sif"
		config "$work/cache-$r"
		drop_caches
		t0=$(now); "$bin" stage --job "$((100 + r))" "$src" >/dev/null; t1=$(now)
		st_t+=($((t1 - t0))); rm -rf "$work/cache-$r" "$work/sifkernel-$(id -u)"
	done
	c=$(printf '%s\n' "${cp_t[@]}" | median); s=$(printf '%s\n' "${st_t[@]}" | median)
	one_stager[$g]=$s
	printf '%-44s %12s %12s %8s %s\n' "cold stage ${g} GiB vs cp (median of $rounds)" "$(ms "$s")" "$(ms "$c")" "$(ratio "$s" "$c")" "<= 1.05"
done

# Peak RSS while staging the largest image.
g=$(tr ' ' '\n' <<<"$sizes" | sort -n | tail -1)
config "$work/cache-rss"
rss=$( { /usr/bin/time -f '%M' "$bin" stage "$work/src-${g}g.sif" >/dev/null; } 2>&1 | tail -1)
printf '%-44s %12s %12s %8s %s\n' "peak RSS staging ${g} GiB" "$((rss / 1024)) MiB" "-" "-" "<= 40 MiB"
rm -rf "$work/cache-rss"

# Eight concurrent stagers of one 1 GiB image against one.
config "$work/cache-conc"
t0=$(now)
for i in $(seq 8); do "$bin" stage --json --job "$((200 + i))" "$work/src-1g.sif" >"$work/conc-$i.json" & done
wait
t1=$(now)
copies=$(grep -l '"copied": true' "$work"/conc-*.json | wc -l)
printf '%-44s %12s %12s %8s %s\n' "8 concurrent stagers of 1 GiB vs one" "$(ms $((t1 - t0)))" "$(ms "${one_stager[1]}")" "$(ratio $((t1 - t0)) "${one_stager[1]}")" "<= 1.3, copies: $copies (want 1)"
rm -rf "$work/cache-conc"

# Warm stage of ten cached images against `sifkernel version`.
config "$work/cache-warm"
imgs=()
for i in $(seq 10); do "$mk" "$work/w$i.sif"; imgs+=("$work/w$i.sif"); done
"$bin" stage "${imgs[@]}" >/dev/null
warm=() ver=()
for r in $(seq 21); do
	t0=$(now); "$bin" stage --job 300 "${imgs[@]}" >/dev/null; t1=$(now); warm+=($((t1 - t0)))
	t0=$(now); "$bin" version >/dev/null; t1=$(now); ver+=($((t1 - t0)))
done
w=$(printf '%s\n' "${warm[@]}" | median); v=$(printf '%s\n' "${ver[@]}" | median)
printf '%-44s %12s %12s %8s %s\n' "warm stage of 10 images vs version (median)" "$(ms "$w")" "$(ms "$v")" "$(ratio "$w" "$v")" "<= 2"

# cache ls and gc with 1,000 entries and 5,000 refs (Go's benchmark harness).
cd "$top"
go test -run '^$' -bench 'List/1000$|GC/1000$' -benchtime 20x ./wrapper/cache | awk '/^Benchmark/ {printf "%-44s %12s %12s %8s %s\n", "cache " ($1 ~ /List/ ? "ls" : "gc") " with 1000 entries, 5000 refs", sprintf("%.1f ms", $3/1e6), "-", "-", "<= 100 ms"}'
