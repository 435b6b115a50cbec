package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelFixCommand() *cli.Command {
	return &cli.Command{
		Name:      "fix",
		Usage:     "repair what check can repair, keeping a backup of each file",
		ArgsUsage: "[NAME...]",
		Description: "Repairs what check reports as " + strings.Join(kernelspec.FixableCodes(), ", ") + ".\n" +
			"Prints a unified diff and keeps kernel.json.bak-<timestamp> beside each file.\n" +
			"See `sifkernel kernel check --help` for what each code means.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the diff, change nothing"},
			&cli.BoolFlag{Name: "keep-nv", Usage: "keep a hard-coded --nv"},
		},
		Action: func(c *cli.Context) error {
			o := kernels.FixOptions{Names: c.Args().Slice(), DryRun: c.Bool("dry-run"), KeepNV: c.Bool("keep-nv")}
			failed := 0
			fixed, err := e.user().Fix(c.Context, o, func(f kernels.Fixed) {
				switch {
				case f.Nothing:
					fmt.Fprintf(e.Stdout, "%s: nothing to fix\n", f.Entry.File())
					return
				case f.Diff == "": // could not be planned: in err
					failed++
					return
				}
				fmt.Fprint(e.Stdout, f.Diff)
				for _, ch := range f.Changes {
					fmt.Fprintf(e.Stdout, "# %s: %s\n", f.Entry.Name, ch)
				}
				if f.Err != nil {
					failed++
				} else if f.Backup != "" {
					fmt.Fprintf(e.Stdout, "fixed %s (original kept as %s)\n", f.Entry.File(), f.Backup)
				}
			})
			if o.DryRun {
				fmt.Fprintln(e.Stdout, "dry run: nothing was changed")
			} else if fixed == 0 && failed == 0 && err == nil {
				fmt.Fprintln(e.Stdout, "nothing to fix")
			}
			return err
		},
	}
}
