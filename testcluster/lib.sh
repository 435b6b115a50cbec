# shellcheck shell=bash
# Shared settings of testcluster/up, down and run-tests.
# shellcheck disable=SC2034 # used by the scripts that source this
SKC=${SIFKERNEL_CLUSTER_DIR:-/var/tmp/sifkernel-cluster}
export SLURM_CONF="$SKC/etc/slurm.conf"
# SIFKERNEL_CLUSTER_SSH=1: the cluster is the VM cluster (testcluster/vm):
# its slurm.conf is the system's, and nodes are hosts reached by ssh.
[ "${SIFKERNEL_CLUSTER_SSH:-0}" = 1 ] && SLURM_CONF=/etc/slurm/slurm.conf
# SIFKERNEL_INSTALLED=1: the cluster runs the installed package (make
# package; dpkg -i): /usr/bin/sifkernel, its /etc/sifkernel/config.toml
# (edited as an admin would), its profile.d snippet, the slurm.conf lines of
# its snippet and its default cache.dir. Otherwise sifkernel is built from
# this tree into $SKC/bin, with its config beside it.
if [ "${SIFKERNEL_INSTALLED:-0}" = 1 ]; then
	SIFKERNEL_BIN=/usr/bin/sifkernel
	SITE_CONFIG=/etc/sifkernel/config.toml
	SLURM_SNIPPET=/usr/share/doc/sifkernel/slurm.conf.snippet
	NODE_CACHE=${NODE_CACHE:-/tmp/sifkernel} # node-local: a private tmpfs in each slurmd's namespace (the VM cluster: its disk)
else
	SIFKERNEL_BIN=$SKC/bin/sifkernel
	SITE_CONFIG=$SKC/etc/sifkernel/config.toml
	SLURM_SNIPPET=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/slurm/slurm.conf.snippet
	NODE_CACHE=/var/tmp/sifkernel-node-cache
fi
export SIFKERNEL_BIN NODE_CACHE SITE_CONFIG  # for the Go tests (testcluster/e2e)
# The profile.d snippet up writes for a build from source; down removes it.
PROFILE_MARK="# written by testcluster/up"
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

# on_node NODE CMD...: run CMD in NODE's mount namespace (its node-local
# disk); on the VM cluster, on the node by ssh.
on_node() {
	local n=$1; shift
	if [ "${SIFKERNEL_CLUSTER_SSH:-0}" = 1 ]; then
		ssh -o BatchMode=yes "$n" -- "$(printf '%q ' "$@")"
		return
	fi
	nsenter --mount --target "$(cat "$SKC/run/node-$n.pid")" -- "$@"
}
