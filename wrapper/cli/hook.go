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

// isHook reports whether this run is a Slurm hook: no command, in a Slurm context.
func (e *env) isHook(c *cli.Context) bool {
	return !c.Args().Present() && e.Getenv("SLURM_SCRIPT_CONTEXT") != ""
}

// runDefault runs when no command is given: inside a Slurm hook it acts as
// that hook, otherwise it shows help. A hook never fails the job over
// sifkernel itself: Slurm drains a node whose Prolog or Epilog fails.
func (e *env) runDefault(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unknown command %q (see sifkernel --help)", c.Args().First())
	}
	ctx := e.Getenv("SLURM_SCRIPT_CONTEXT")
	if ctx == "" {
		return cli.ShowAppHelp(c)
	}
	log := e.log.WithField("hook", ctx).WithField("job", e.Getenv("SLURM_JOB_ID"))
	if name, ok := hookContexts[ctx]; ok {
		log.Warnf("the %s hook is not available in sifkernel %s; doing nothing", name, e.Version)
		return nil
	}
	log.Infof("sifkernel has nothing to do in Slurm context %q", ctx)
	return nil
}
