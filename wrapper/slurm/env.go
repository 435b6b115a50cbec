package slurm

import "fmt"

// The variables of Slurm's that sifkernel reads outside GPU detection (the
// node package's node.GPUSignals). Only this package reads them; the rest
// asks the functions below.
const (
	// VarJobID is the job's id, in every job step and hook.
	VarJobID = "SLURM_JOB_ID"
	// VarScriptContext names the hook slurmd runs (prolog_slurmd, ...).
	VarScriptContext = "SLURM_SCRIPT_CONTEXT"
	varJobUID        = "SLURM_JOB_UID"
	varJobGID        = "SLURM_JOB_GID"
	varJobUser       = "SLURM_JOB_USER"
	varPartition     = "SLURM_JOB_PARTITION"
	varNodeName      = "SLURMD_NODENAME"
	varJobNumNodes   = "SLURM_JOB_NUM_NODES"
	varNNodes        = "SLURM_NNODES" // older Slurm, and salloc
)

// ScriptContext is the Slurm script context this process runs in
// (SLURM_SCRIPT_CONTEXT); "" outside a hook.
func ScriptContext(getenv func(string) string) string { return getenv(VarScriptContext) }

// EnvJobID is SLURM_JOB_ID as it is, for log lines: "" outside a job, and
// unchecked (use JobFrom for an id to act on).
func EnvJobID(getenv func(string) string) string { return getenv(VarJobID) }

// JobFrom is the one rule for "which job": the --job flag's value if given,
// else SLURM_JOB_ID. The zero JobID (and no error) when neither is set; an
// error when the one in use is not a job id.
func JobFrom(flag string, getenv func(string) string) (JobID, error) {
	s := flag
	if s == "" {
		s = getenv(VarJobID)
	}
	if s == "" {
		return JobID{}, nil
	}
	return ParseJobID(s)
}

// ErrNoJob says neither --job nor SLURM_JOB_ID names a job.
var ErrNoJob = fmt.Errorf("not inside a Slurm job (no %s); give --job ID", VarJobID)

// NumNodes is the job's node count as Slurm gives it to a step
// (SLURM_JOB_NUM_NODES, else SLURM_NNODES); "" when neither is set.
func NumNodes(getenv func(string) string) string {
	if n := getenv(varJobNumNodes); n != "" {
		return n
	}
	return getenv(varNNodes)
}

// IdentityVars are the variables that say whose job a hook runs for: a root
// hook passes them on to the child it runs as the job user.
func IdentityVars() []string {
	return []string{VarJobID, varJobUID, varJobGID, varJobUser, varNodeName}
}
