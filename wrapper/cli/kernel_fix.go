package cli

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelFixCommand() *cli.Command {
	return &cli.Command{
		Name:      "fix",
		Usage:     "repair what check can repair, keeping a backup of each file",
		ArgsUsage: "[NAME...]",
		Description: "Repairs curly quotes, a stale Apptainer path, a missing bind for the\n" +
			"connection file's directory, and a hard-coded --nv (each job then decides).\n" +
			"Prints a unified diff and keeps kernel.json.bak-<timestamp> beside each file.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the diff, change nothing"},
			&cli.BoolFlag{Name: "keep-nv", Usage: "keep a hard-coded --nv"},
		},
		Action: func(c *cli.Context) error {
			return e.kernelFix(c, c.Args().Slice(), c.Bool("dry-run"), c.Bool("keep-nv"))
		},
	}
}

func (e *env) kernelFix(c *cli.Context, names []string, dryRun, keepNV bool) error {
	entries, err := e.selectKernels(names)
	if err != nil {
		return err
	}
	opts := kernelspec.FixOptions{Checker: e.checker(c.Context), KeepNV: keepNV}
	var failed []error
	fixed := 0
	for _, en := range entries {
		named := len(names) > 0
		if !named && unix.Access(en.Dir, unix.W_OK) != nil {
			continue // not ours to change: a site-wide kernel
		}
		rep, err := kernelspec.PlanFix(en.Kernel, opts)
		switch {
		case errors.Is(err, kernelspec.ErrNothingToFix):
			if named {
				fmt.Fprintf(e.Stdout, "%s: nothing to fix\n", en.File())
			}
			continue
		case err != nil:
			failed = append(failed, err)
			continue
		}
		fmt.Fprint(e.Stdout, rep.Diff())
		for _, ch := range rep.Changes {
			fmt.Fprintf(e.Stdout, "# %s: %s\n", en.Name, ch)
		}
		if dryRun {
			continue
		}
		backup, err := rep.Apply(e.Now())
		if err != nil {
			failed = append(failed, err)
			continue
		}
		fixed++
		fmt.Fprintf(e.Stdout, "fixed %s (original kept as %s)\n", en.File(), backup)
	}
	if dryRun {
		fmt.Fprintln(e.Stdout, "dry run: nothing was changed")
	} else if fixed == 0 && len(failed) == 0 {
		fmt.Fprintln(e.Stdout, "nothing to fix")
	}
	return errors.Join(failed...)
}
