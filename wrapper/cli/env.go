package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

func (e *env) envCommand() *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "on a compute node: print the exports that give this shell its job's kernels",
		Description: "For a shell that reached its job's node by ssh (TACC-style idev, a second\n" +
			"terminal, an editor's remote session): it has none of the job's environment,\n" +
			"but the Prolog prepared the job's kernels. sifkernel finds the job from\n" +
			"SLURM_JOB_ID, else the session's cgroup (pam_slurm_adopt), else your job\n" +
			"directories on this node (the newest, if several; it says so), and prints\n" +
			"what the TaskProlog would have exported. Prints nothing where you have no\n" +
			"job (a login node). The profile.d snippet runs it at login.\n" +
			"  eval \"$(sifkernel env)\"                 # sh, bash, zsh\n" +
			"  eval `sifkernel env --shell csh`         # csh, tcsh",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shell", Value: "sh", Usage: "sh, csh or fish"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "say nothing when no job is found (for profile scripts)"},
		},
		Action: func(c *cli.Context) error {
			if !slices.Contains(lifecycle.Shells, c.String("shell")) {
				return usagef("--shell %q: want sh, csh or fish", c.String("shell"))
			}
			lc := e.lifecycle()
			s, ok := lc.FindSession()
			if !ok {
				if !c.Bool("quiet") {
					fmt.Fprintln(e.Stderr, "sifkernel: no job of yours with prepared kernels on this node")
				}
				return nil
			}
			if len(s.Others) > 0 {
				fmt.Fprintf(e.Stderr, "sifkernel: using job %s, %s (also here: %s); set SLURM_JOB_ID to pick another\n",
					s.Job, s.How, joinJobs(s.Others))
			}
			out, err := lc.SessionExports(s).Format(c.String("shell"))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(e.Stdout, out)
			return err
		},
	}
}

func joinJobs(jobs []slurm.JobID) string {
	s := make([]string, len(jobs))
	for i, j := range jobs {
		s[i] = j.String()
	}
	return strings.Join(s, ", ")
}
