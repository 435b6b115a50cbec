# shellcheck shell=bash
# Shared settings of testcluster/up, down and run-tests.
# shellcheck disable=SC2034 # used by the scripts that source this
SKC=${SIFKERNEL_CLUSTER_DIR:-/var/tmp/sifkernel-cluster}
export SLURM_CONF="$SKC/etc/slurm.conf"
NODE_CACHE=/var/tmp/sifkernel-node-cache   # node-local: a private tmpfs in each slurmd's namespace
NODES=(m1 m2)
TEST_USERS=(sktest1 sktest2)
APPTAINER=${APPTAINER:-/opt/apps/tacc-apptainer/1.5.3/bin/apptainer}
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { printf '[testcluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# pid_alive FILE: the process named in FILE runs.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for SECONDS CMD...: retry CMD until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# on_node NODE CMD...: run CMD in NODE's mount namespace (its node-local disk).
on_node() {
	local n=$1; shift
	nsenter --mount --target "$(cat "$SKC/run/node-$n.pid")" -- "$@"
}
