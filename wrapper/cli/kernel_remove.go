package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func (e *env) kernelRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Aliases:   []string{"rm"},
		Usage:     "remove a kernelspec from your Jupyter data directory",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("kernel remove takes one NAME")
			}
			r, err := e.user().Remove(c.Args().First(), c.String("dir"))
			if err != nil {
				return err
			}
			if r.Link {
				fmt.Fprintf(e.Stdout, "removed the link %s (its target was left alone)\n", r.Path)
			} else {
				fmt.Fprintf(e.Stdout, "removed %s\n", r.Path)
			}
			return nil
		},
	}
}

var dirFlag = &cli.StringFlag{Name: "dir", Usage: "Jupyter data `DIR` (default: JUPYTER_DATA_DIR, else ~/.local/share/jupyter)"}
