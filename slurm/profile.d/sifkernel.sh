# shellcheck shell=sh
# /etc/profile.d/sifkernel.sh: give a login shell on a compute node its
# Slurm job's container kernels.
# - Started by `sifkernel idev` with srun (SIFKERNEL_AUTO=1, and the job's
#   environment): prepare the job's kernels once (sifkernel activate).
# - Reached by ssh (TACC-style idev, a second terminal, an editor's remote
#   session; pam_slurm_adopt puts it in the job): no job environment but,
#   with pam_slurm_adopt, SLURM_JOB_ID (it sets that one variable).
#   `sifkernel env` finds the job on this node (SLURM_JOB_ID, else the
#   session's cgroup, else the newest) and exports what the TaskProlog would
#   have.
# On a login node this costs one test of a directory. Sites set the two
# values below: sifkernel's path (used when it is not on PATH at login) and
# <cache.dir>/jobs.
sifkernel_bin=/usr/local/bin/sifkernel
sifkernel_jobs=/tmp/sifkernel/jobs
if command -v sifkernel >/dev/null 2>&1; then sifkernel_bin=sifkernel; fi
if [ -z "${SIFKERNEL_JOB_DIR:-}" ]; then
	if [ "${SIFKERNEL_AUTO:-}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
		eval "$("$sifkernel_bin" activate --shell sh)"
	elif [ -d "$sifkernel_jobs" ]; then
		eval "$("$sifkernel_bin" env --quiet --shell sh)"
	fi
fi
unset sifkernel_bin sifkernel_jobs
