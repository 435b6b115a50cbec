package cli

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// ExitStatus carries a command's exit status through (run): main exits
// with it and prints nothing.
type ExitStatus struct{ Code int }

func (e *ExitStatus) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// lifecycle gives the wrapper package what it needs from this process.
func (e *env) lifecycle() *lifecycle.Env {
	return &lifecycle.Env{
		Config: e.cfg, ConfigFile: e.configFile, ConfigDefaults: e.onDefaults, Log: e.log, LookupEnv: e.LookupEnv, Self: e.Self,
		LookupUser: e.LookupUser, Version: e.Version, Stdout: e.Stdout, Now: e.Now,
	}
}

// hookCommands are the commands that act as Slurm hooks, or run as part of
// one, and must never fail the job for a user's or an admin's mistake.
var hookCommands = []string{slurm.Prolog, slurm.Epilog, slurm.TaskProlog, lifecycle.ChildCommand}

func isHookCommand(c *cli.Context) bool {
	return c.Args().Present() && slices.Contains(hookCommands, c.Args().First())
}

func (e *env) prologCommand() *cli.Command {
	return &cli.Command{
		Name:  slurm.Prolog,
		Usage: "Slurm Prolog (root): ready the node cache and the job's kernels",
		Description: "Run by slurmd as root on every node of a job. Exits 0 for every job or user\n" +
			"problem (a failing Prolog drains the node); only faults named in\n" +
			"prolog.fail_node_on fail it.",
		Action: func(c *cli.Context) error { return e.lifecycle().Prolog(c.Context) },
	}
}

func (e *env) epilogCommand() *cli.Command {
	return &cli.Command{
		Name:   slurm.Epilog,
		Usage:  "Slurm Epilog (root): remove the job's directory and refs, evict per keep_warm",
		Action: func(c *cli.Context) error { return e.lifecycle().Epilog(c.Context) },
	}
}

func (e *env) taskPrologCommand() *cli.Command {
	return &cli.Command{
		Name:   slurm.TaskProlog,
		Usage:  "Slurm TaskProlog (job user): export JUPYTER_PATH for the task",
		Action: func(c *cli.Context) error { return e.lifecycle().TaskProlog(c.Context) },
	}
}

var jobFlag = &cli.StringFlag{Name: "job", Usage: "the job `ID` (default: $" + slurm.VarJobID + ")"}

func (e *env) activateCommand() *cli.Command {
	return &cli.Command{
		Name:  "activate",
		Usage: "in a job script: prepare the job's kernels and print exports to eval",
		Description: "  eval \"$(sifkernel activate)\"            # sh, bash, zsh\n" +
			"  eval `sifkernel activate --shell csh`    # csh, tcsh\n" +
			"  sifkernel activate --shell fish | source",
		Flags: []cli.Flag{jobFlag, &cli.StringFlag{Name: "shell", Value: "sh", Usage: "sh, csh or fish"}},
		Action: func(c *cli.Context) error {
			lc := e.lifecycle()
			job, err := lc.JobID(c.String("job"))
			if err != nil {
				return &UsageError{Err: err}
			}
			if !slices.Contains(lifecycle.Shells, c.String("shell")) {
				return usagef("--shell %q: want sh, csh or fish", c.String("shell"))
			}
			ex, err := lc.Activate(c.Context, job, "activate")
			if err != nil {
				return err
			}
			out, err := ex.Format(c.String("shell"))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(e.Stdout, out)
			return err
		},
	}
}

func (e *env) runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "in a job script: run CMD with the job's kernels, then clean up",
		ArgsUsage: "-- CMD [ARGS...]",
		Description: "Prepares the job's kernels, runs CMD with JUPYTER_PATH set, forwards\n" +
			"SIGINT, SIGTERM, SIGHUP and SIGUSR1 to it, and when it ends removes what it\n" +
			"made (unless a Prolog made it: the Epilog does that). Exits with CMD's status.",
		Flags: []cli.Flag{jobFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("run needs a command: sifkernel run -- jupyter lab")
			}
			lc := e.lifecycle()
			job, err := lc.JobID(c.String("job"))
			if err != nil {
				return &UsageError{Err: err}
			}
			code, err := lc.Run(c.Context, job, c.Args().Slice())
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitStatus{Code: code}
			}
			return nil
		},
	}
}

func (e *env) sweepCommand() *cli.Command {
	host, _ := slurm.NodeName(e.Getenv) // Slurm's name for this node
	return &cli.Command{
		Name:  slurm.Sweep,
		Usage: "root, at boot and from cron: clean up after jobs that no longer run here",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "at boot: no job runs here, remove every job's leftovers"},
			&cli.StringFlag{Name: "node", Value: host, Usage: "this node's Slurm `NAME` (for squeue; default $SLURMD_NODENAME, else the short host name)"},
			&cli.DurationFlag{Name: "budget", Value: lifecycle.DefaultSweepBudget, Usage: "at most this long in all; what is left waits for the next run"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			o := lifecycle.SweepOptions{All: c.Bool("all"), Node: c.String("node"), Budget: c.Duration("budget")}
			r, err := e.lifecycle().Sweep(c.Context, o)
			if c.Bool("json") {
				if jerr := writeJSON(e.Stdout, r); jerr != nil {
					return jerr
				}
			} else {
				fmt.Fprintf(e.Stdout, "removed %d job directories; swept the caches of %d users\n", len(r.JobDirs), len(r.Users))
				if r.Left > 0 {
					fmt.Fprintf(e.Stdout, "%d leftovers not reached within --budget: the next run goes on\n", r.Left)
				}
			}
			return err
		},
	}
}
