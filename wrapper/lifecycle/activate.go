package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Shells activate can print for.
var Shells = []string{"sh", "csh", "fish"}

// JobID is the job activate and run act for (slurm.JobFrom): one they must have.
func (e *Env) JobID(flag string) (slurm.JobID, error) {
	job, err := slurm.JobFrom(flag, e.getenv)
	if err == nil && job.IsZero() {
		err = slurm.ErrNoJob
	}
	return job, err
}

// Activate prepares the job's kernels (as the TaskProlog would) and returns
// the exports. Unlike a hook it reports failure: it is run by people.
func (e *Env) Activate(ctx context.Context, job slurm.JobID, createdBy string) (Exports, error) {
	return e.prepare(ctx, job, createdBy, e.Config.Cache.StageTimeout.Duration)
}

// Format writes exports for eval in a shell.
func (ex Exports) Format(shell string) (string, error) {
	var b strings.Builder
	for _, kv := range ex.Vars() {
		q := quote(kv[1])
		switch shell {
		case "sh", "bash", "zsh", "":
			fmt.Fprintf(&b, "export %s=%s;\n", kv[0], q)
		case "csh", "tcsh":
			fmt.Fprintf(&b, "setenv %s %s;\n", kv[0], q)
		case "fish":
			fmt.Fprintf(&b, "set -gx %s %s;\n", kv[0], q)
		default:
			return "", fmt.Errorf("shell %q: want sh, csh or fish", shell)
		}
	}
	return b.String(), nil
}

// quote single-quotes a value for sh, csh and fish alike; a value with a
// single quote or newline in it is refused by Format's callers' paths never
// holding one (job directories are made by sifkernel), but is still escaped.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
