#!/usr/bin/env bash
# Site cache benchmark (issue 22), as root: USERS (default 8) throwaway
# users each run a job whose one kernel names the same public image of
# SIZE_MIB (default 256) MiB. Measured in one run, each Prolog against the
# first: the first job's Prolog copies the image once (as the site user),
# every later user's copies 0 bytes and costs what a cache hit costs; the
# node ends with one copy; metrics report the bytes saved. With the site
# cache off (cache.site = false) the same run makes USERS copies, for the
# comparison.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "site.sh runs Prologs: run it as root" >&2; exit 1; }
top=$(cd "$(dirname "$0")/../.." && pwd)
mk="$top/bin/mkimage"
work=$(mktemp -d /tmp/sifkernel-site.XXXXXX)
chmod 755 "$work"
users=${USERS:-8}
size=${SIZE_MIB:-256}
names=()
cleanup() {
	for u in "${names[@]}"; do userdel "$u" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
install -m 0755 "$top/bin/sifkernel" "$work/sifkernel"
bin="$work/sifkernel"
mkdir -p "$work/apps" "$work/node"
head -c "${size}M" /dev/urandom >"$work/rootfs"
"$mk" -rootfs "$work/rootfs" "$work/apps/torch.sif"
rm -f "$work/rootfs"
chmod 644 "$work/apps/torch.sif"
siteuser=sifkernel
getent passwd "$siteuser" >/dev/null || siteuser=nobody
for i in $(seq "$users"); do
	u=sifksite$i
	names+=("$u")
	id "$u" >/dev/null 2>&1 || useradd -M -d "$work/home/$u" -s /bin/sh "$u"
	mkdir -p "$work/home/$u/.local/share/jupyter/kernels"
	HOME="$work/home/$u" "$bin" kernel add torch --image "$work/apps/torch.sif" >/dev/null 2>&1
	chown -R "$u:" "$work/home/$u"
	chmod 700 "$work/home/$u"
done
now() { date +%s%N; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f ms", n/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
counter() { awk -v k="\"$1\":" -F'[,{}]' '{for (i=1;i<=NF;i++) if (index($i,k)==1) {sub(k,"",$i); printf "%.0f\n", $i}}' "$work/metrics/counters.json" 2>/dev/null || echo 0; }

# run SITE: one job per user, in turn; prints each Prolog's time and the copies.
run() {
	rm -rf "$work/node/cache" "$work/metrics"
	printf '[cache]\ndir = "%s/node/cache"\nreserve = "0B"\nkeep_warm = "1h"\nsite = %s\nsite_user = "%s"\nstage_timeout = "600s"\n[metrics]\ndir = "%s/metrics"\n' \
		"$work" "$1" "$siteuser" "$work" >"$work/config.toml"
	chmod 644 "$work/config.toml"
	times=()
	for i in $(seq "$users"); do
		u=sifksite$i
		t0=$(now)
		env -i SLURM_JOB_ID=$((700 + i)) SLURM_JOB_UID="$(id -u "$u")" SLURM_JOB_GID="$(id -g "$u")" SLURM_JOB_USER="$u" \
			SLURM_JOB_PARTITION=normal SIFKERNEL_CONFIG="$work/config.toml" "$bin" prolog 2>/dev/null
		t1=$(now)
		times+=($((t1 - t0)))
	done
	copies=$(find "$work/node/cache" -name '*.sif' -type f | wc -l)
	# The first user's second job: a hit in whichever cache holds the image.
	u=sifksite1
	t0=$(now)
	env -i SLURM_JOB_ID=799 SLURM_JOB_UID="$(id -u "$u")" SLURM_JOB_GID="$(id -g "$u")" SLURM_JOB_USER="$u" \
		SLURM_JOB_PARTITION=normal SIFKERNEL_CONFIG="$work/config.toml" "$bin" prolog 2>/dev/null
	t1=$(now)
	hit=$((t1 - t0))
}

run true
site_times=("${times[@]}"); site_copies=$copies; site_hit=$hit
saved=$(counter site_bytes_saved); staged=$(counter bytes_staged)
run false
own_times=("${times[@]}"); own_copies=$copies; own_hit=$hit

echo "sifkernel site cache benchmark on $(uname -n): $(nproc) cores, $(date -u +%F); $users users, one ${size} MiB public image, site user $siteuser"
printf '\n%-52s %12s %12s %8s %s\n' benchmark measured baseline ratio target
printf '%-52s %12s %12s %8s %s\n' "first user's Prolog (copies it, site cache)" "$(ms "${site_times[0]}")" "$(ms "${own_times[0]}")" "$(ratio "${site_times[0]}" "${own_times[0]}")" "~1 (one copy either way)"
printf '%-52s %12s %12s %8s %s\n' "second user's Prolog: site hit vs own copy" "$(ms "${site_times[1]}")" "$(ms "${own_times[1]}")" "$(ratio "${site_times[1]}" "${own_times[1]}")" "<< 1 (a hit)"
printf '%-52s %12s %12s %8s %s\n' "second user's Prolog vs a hit in a user's own cache" "$(ms "${site_times[1]}")" "$(ms "$own_hit")" "$(ratio "${site_times[1]}" "$own_hit")" "~1 (what a hit costs)"
printf '%-52s %12s %12s %8s %s\n' "a user's second job: site hit vs own-cache hit" "$(ms "$site_hit")" "$(ms "$own_hit")" "$(ratio "$site_hit" "$own_hit")" "<= 1.2"
printf '%-52s %12s %12s %8s %s\n' "last user's Prolog vs second's (both hits)" "$(ms "${site_times[$((users - 1))]}")" "$(ms "${site_times[1]}")" "$(ratio "${site_times[$((users - 1))]}" "${site_times[1]}")" "~1"
printf '%-52s %12s %12s %8s %s\n' "copies on the node after $users users' jobs" "$site_copies" "$own_copies" "-" "1 (site) vs $users"
printf '%-52s %12s %12s %8s %s\n' "bytes copied / saved (metrics counters)" "$staged" "$saved" "-" "saved = $users x image (the hits of $((users - 1)) users and one second job)"
