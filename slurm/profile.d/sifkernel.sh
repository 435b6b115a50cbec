# shellcheck shell=sh
# /etc/profile.d/sifkernel.sh: inside a Slurm job started by `sifkernel idev`
# (SIFKERNEL_AUTO=1), prepare the job's container kernels once.
if [ "${SIFKERNEL_AUTO:-}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${SIFKERNEL_JOB_DIR:-}" ] \
	&& command -v sifkernel >/dev/null 2>&1; then
	eval "$(sifkernel activate --shell sh)"
fi
