package cli

import (
	"github.com/urfave/cli/v2"
)

// hookContexts are the SLURM_SCRIPT_CONTEXT values sifkernel acts on.
var hookContexts = map[string]string{
	"prolog_slurmd": "prolog",
	"epilog_slurmd": "epilog",
	"prolog_task":   "taskprolog",
}

// hookName is the hook's name as every log line of the lifecycle gives it
// (prolog, epilog, taskprolog): the command's, else the Slurm context's.
func (e *env) hookName(c *cli.Context) string {
	if c.Args().Present() {
		return c.Args().First()
	}
	ctx := e.Getenv("SLURM_SCRIPT_CONTEXT")
	if name, ok := hookContexts[ctx]; ok {
		return name
	}
	return ctx
}

// isHook reports whether this run is a Slurm hook: no command, in a Slurm context.
func (e *env) isHook(c *cli.Context) bool {
	return !c.Args().Present() && e.Getenv("SLURM_SCRIPT_CONTEXT") != ""
}

// runDefault runs when no command is given: inside a Slurm hook it acts as
// that hook (so slurm.conf can name the binary itself as Prolog, Epilog and
// TaskProlog), otherwise it shows help.
func (e *env) runDefault(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unknown command %q (see sifkernel --help)", c.Args().First())
	}
	ctx := e.Getenv("SLURM_SCRIPT_CONTEXT")
	if ctx == "" {
		return cli.ShowAppHelp(c)
	}
	lc := e.lifecycle()
	switch hookContexts[ctx] {
	case "prolog":
		return lc.Prolog(c.Context)
	case "epilog":
		return lc.Epilog(c.Context)
	case "taskprolog":
		return lc.TaskProlog(c.Context)
	}
	e.log.WithField("hook", ctx).WithField("job", e.Getenv("SLURM_JOB_ID")).Infof("sifkernel has nothing to do in Slurm context %q", ctx)
	return nil
}
