# /etc/profile.d/sifkernel.csh: the csh/tcsh twin of sifkernel.sh.
if ( $?SIFKERNEL_AUTO && $?SLURM_JOB_ID && ! $?SIFKERNEL_JOB_DIR ) then
	if ( "$SIFKERNEL_AUTO" == "1" ) then
		which sifkernel >& /dev/null && eval `sifkernel activate --shell csh`
	endif
endif
