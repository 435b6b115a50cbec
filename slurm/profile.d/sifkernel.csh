# /etc/profile.d/sifkernel.csh: the csh/tcsh twin of sifkernel.sh (see there),
# case for case: started by `sifkernel idev` (SIFKERNEL_AUTO=1 with the job's
# environment) it activates; otherwise, where the node has job directories,
# `sifkernel env` finds the job, also in an ssh session that pam_slurm_adopt
# gave SLURM_JOB_ID alone.
set sifkernel_bin = /usr/local/bin/sifkernel
set sifkernel_jobs = /tmp/sifkernel/jobs
set sifkernel_auto = 0
which sifkernel >& /dev/null && set sifkernel_bin = sifkernel
if ( $?SIFKERNEL_AUTO && $?SLURM_JOB_ID ) then
	if ( "$SIFKERNEL_AUTO" == "1" ) set sifkernel_auto = 1
endif
if ( ! $?SIFKERNEL_JOB_DIR ) then
	if ( $sifkernel_auto == 1 ) then
		eval `$sifkernel_bin activate --shell csh`
	else if ( -d $sifkernel_jobs ) then
		eval `$sifkernel_bin env --quiet --shell csh`
	endif
endif
unset sifkernel_bin sifkernel_jobs sifkernel_auto
