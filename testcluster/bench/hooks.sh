#!/usr/bin/env bash
# Hook benchmarks (issue 4), as root: a user with KERNELS (default 10)
# container kernels whose images are all cached. Medians of ROUNDS (default
# 21) runs, each compared with `sifkernel version` run the same way in the
# same run (through the same env -i, and runuser for the user's): warm
# TaskProlog (as the user) <= 3x, Prolog <= 5x, Epilog <= 2x. The Epilog
# runs its cleanup child from sifkernel-cleanup (make build puts it beside
# sifkernel); a second Epilog row runs the same sifkernel from a directory
# without it, as an install without the small binary would.
# BASELINE=/path/to/an/older/sifkernel runs that binary's hooks too, round
# by round between the new one's (its own cache directory, the same
# config), and prints new against old: a release against the previous one,
# same machine, same load.
# It creates a throwaway user (sifkbench) and removes it at the end.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "hooks.sh runs the Prolog and Epilog: run it as root" >&2; exit 1; }
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/bin/sifkernel"
mk="$top/bin/mkimage"
work=$(mktemp -d /tmp/sifkernel-hooks.XXXXXX)
chmod 755 "$work"
user=sifkbench
cleanup() { userdel "$user" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# A user left by an interrupted run has its home in that run's directory.
if id "$user" >/dev/null 2>&1; then usermod -d "$work/home" "$user"; else useradd -M -d "$work/home" -s /bin/sh "$user"; fi
uid=$(id -u "$user"); gid=$(id -g "$user")
[ -x "$top/bin/sifkernel-cleanup" ] || { echo "no $top/bin/sifkernel-cleanup: make build" >&2; exit 1; }
install -m 0755 "$bin" "$work/sifkernel"
install -m 0755 "$top/bin/sifkernel-cleanup" "$work/sifkernel-cleanup"
install -D -m 0755 "$bin" "$work/alone/sifkernel"
chmod 755 "$work/alone"
bin="$work/sifkernel" alone="$work/alone/sifkernel"
old=""
if [ -n "${BASELINE:-}" ]; then
	install -m 0755 "$BASELINE" "$work/sifkernel-old"
	old="$work/sifkernel-old"
fi
mkdir -p "$work/home/.local/share/jupyter/kernels" "$work/images" "$work/node"
n=${KERNELS:-10}
rounds=${ROUNDS:-21}
for i in $(seq "$n"); do
	"$mk" "$work/images/k$i.sif"
	HOME="$work/home" "$bin" kernel add "k$i" --image "$work/images/k$i.sif" >/dev/null 2>&1
done
chown -R "$user:" "$work/home" "$work/images"
for c in config config-old; do
	printf '[cache]\ndir = "%s/node/%s"\nkeep_warm = "1h"\nreserve = "0B"\n[kernel]\nmax_per_job = 1000\n' "$work" "cache${c#config}" >"$work/$c.toml"
	chmod 644 "$work/$c.toml"
done
export SIFKERNEL_CONFIG="$work/config.toml"
job_env() { echo "SLURM_JOB_ID=$1 SLURM_JOB_UID=$uid SLURM_JOB_GID=$gid SLURM_JOB_USER=$user SLURM_JOB_PARTITION=normal SIFKERNEL_CONFIG=${2:-$SIFKERNEL_CONFIG}"; }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

# Warm the cache: one job stages all the images (keep_warm keeps them).
# shellcheck disable=SC2046
env -i $(job_env 1) "$bin" prolog 2>/dev/null
# shellcheck disable=SC2046
env -i $(job_env 1) "$bin" epilog 2>/dev/null
if [ -n "$old" ]; then
	# shellcheck disable=SC2046
	env -i $(job_env 1 "$work/config-old.toml") "$old" prolog 2>/dev/null
	# shellcheck disable=SC2046
	env -i $(job_env 1 "$work/config-old.toml") "$old" epilog 2>/dev/null
fi

pro=() epi=() aepi=() bver=() task=() ver=() uver=() opro=() oepi=() otask=()
for r in $(seq 100 $((99 + rounds))); do
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$r") "$bin" prolog 2>/dev/null; t1=$(now); }
	pro+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); runuser -u "$user" -- env -i $(job_env "$r") HOME="$work/home" SLURM_SCRIPT_CONTEXT=prolog_task "$bin" >/dev/null; t1=$(now); }
	task+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); runuser -u "$user" -- env -i $(job_env "$r") HOME="$work/home" "$bin" version >/dev/null; t1=$(now); }
	uver+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$r") "$bin" epilog 2>/dev/null; t1=$(now); }
	epi+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$r") "$bin" version >/dev/null; t1=$(now); }
	ver+=($((t1 - t0)))
	{ t0=$(now); "$bin" version >/dev/null; t1=$(now); }
	bver+=($((t1 - t0)))
	# shellcheck disable=SC2046
	env -i $(job_env "$((r + 1000))") "$bin" prolog 2>/dev/null
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$((r + 1000))") "$alone" epilog 2>/dev/null; t1=$(now); }
	aepi+=($((t1 - t0)))
	[ -n "$old" ] || continue
	oc="$work/config-old.toml"
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$r" "$oc") "$old" prolog 2>/dev/null; t1=$(now); }
	opro+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); runuser -u "$user" -- env -i $(job_env "$r" "$oc") HOME="$work/home" SLURM_SCRIPT_CONTEXT=prolog_task "$old" >/dev/null; t1=$(now); }
	otask+=($((t1 - t0)))
	# shellcheck disable=SC2046
	{ t0=$(now); env -i $(job_env "$r" "$oc") "$old" epilog 2>/dev/null; t1=$(now); }
	oepi+=($((t1 - t0)))
done
kernels=$(find "$work/node/cache/users/$uid" -maxdepth 1 -name '*.sif' | wc -l)
v=$(printf '%s\n' "${ver[@]}" | median); uv=$(printf '%s\n' "${uver[@]}" | median)
echo "sifkernel hook benchmarks on $(uname -n): $(nproc) cores, $(date -u +%F); $n kernels, $kernels images cached"
printf '\n%-40s %12s %12s %8s %s\n' benchmark hook version ratio target
p=$(printf '%s\n' "${pro[@]}" | median); printf '%-40s %12s %12s %8s %s\n' "Prolog, $n kernels cached" "$(ms "$p")" "$(ms "$v")" "$(ratio "$p" "$v")" "<= 5"
t=$(printf '%s\n' "${task[@]}" | median); printf '%-40s %12s %12s %8s %s\n' "warm TaskProlog, $n kernels (runuser)" "$(ms "$t")" "$(ms "$uv")" "$(ratio "$t" "$uv")" "<= 3"
e=$(printf '%s\n' "${epi[@]}" | median); printf '%-40s %12s %12s %8s %s\n' "Epilog, $n kernels" "$(ms "$e")" "$(ms "$v")" "$(ratio "$e" "$v")" "<= 2"
a=$(printf '%s\n' "${aepi[@]}" | median); printf '%-40s %12s %12s %8s %s\n' "  the same, no sifkernel-cleanup" "$(ms "$a")" "$(ms "$v")" "$(ratio "$a" "$v")" ""
# Before 2026-12-03 `version` ran without env -i, one exec fewer than the hooks.
b=$(printf '%s\n' "${bver[@]}" | median); printf '%-40s %12s %12s %8s %s\n' "  against version without env -i" "$(ms "$e")" "$(ms "$b")" "$(ratio "$e" "$b")" ""
if [ -n "$old" ]; then
	printf '\n%-40s %12s %12s %8s\n' "this tree against BASELINE" new old ratio
	op=$(printf '%s\n' "${opro[@]}" | median); printf '%-40s %12s %12s %8s\n' "Prolog, $n kernels cached" "$(ms "$p")" "$(ms "$op")" "$(ratio "$p" "$op")"
	ot=$(printf '%s\n' "${otask[@]}" | median); printf '%-40s %12s %12s %8s\n' "warm TaskProlog, $n kernels (runuser)" "$(ms "$t")" "$(ms "$ot")" "$(ratio "$t" "$ot")"
	oe=$(printf '%s\n' "${oepi[@]}" | median); printf '%-40s %12s %12s %8s\n' "Epilog, $n kernels" "$(ms "$e")" "$(ms "$oe")" "$(ratio "$e" "$oe")"
fi
