# /etc/profile.d/sifkernel.csh: the csh/tcsh twin of sifkernel.sh (see there).
set sifkernel_bin = /usr/local/bin/sifkernel
set sifkernel_jobs = /tmp/sifkernel/jobs
which sifkernel >& /dev/null && set sifkernel_bin = sifkernel
if ( ! $?SIFKERNEL_JOB_DIR ) then
	if ( $?SIFKERNEL_AUTO && $?SLURM_JOB_ID ) then
		if ( "$SIFKERNEL_AUTO" == "1" ) eval `$sifkernel_bin activate --shell csh`
	else if ( ! $?SLURM_JOB_ID && -d $sifkernel_jobs ) then
		eval `$sifkernel_bin env --quiet --shell csh`
	endif
endif
unset sifkernel_bin sifkernel_jobs
