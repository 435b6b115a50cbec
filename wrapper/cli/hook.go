package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// hookName is the hook's name as every log line of the lifecycle gives it
// (prolog, epilog, taskprolog): the command's, else the Slurm context's.
func (e *env) hookName(c *cli.Context) string {
	if c.Args().Present() {
		return c.Args().First()
	}
	ctx := slurm.ScriptContext(e.Getenv)
	if name, ok := slurm.Hook(ctx); ok {
		return name
	}
	return ctx
}

// isHook reports whether this run is a Slurm hook: no command, in a Slurm context.
func (e *env) isHook(c *cli.Context) bool {
	return !c.Args().Present() && slurm.ScriptContext(e.Getenv) != ""
}

// runDefault runs when no command is given: inside a Slurm hook it acts as
// that hook (so slurm.conf can name the binary itself as Prolog, Epilog and
// TaskProlog), otherwise it shows help.
func (e *env) runDefault(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unknown command %q (see sifkernel --help)", c.Args().First())
	}
	ctx := slurm.ScriptContext(e.Getenv)
	if ctx == "" {
		return cli.ShowAppHelp(c)
	}
	lc := e.lifecycle()
	switch hook, _ := slurm.Hook(ctx); hook {
	case slurm.Prolog:
		return lc.Prolog(c.Context)
	case slurm.Epilog:
		return lc.Epilog(c.Context)
	case slurm.TaskProlog:
		return lc.TaskProlog(c.Context)
	}
	e.log.WithField("hook", ctx).WithField("job", slurm.EnvJobID(e.Getenv)).Infof("sifkernel has nothing to do in Slurm context %q", ctx)
	return nil
}
