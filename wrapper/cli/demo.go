package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/demo"
)

func (e *env) demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "show the whole lifecycle on a simulated GPU node, in a temporary directory (no root, no Slurm)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "keep", Usage: "keep the temporary directory"}},
		Action: func(c *cli.Context) error {
			_, err := demo.Run(c.Context, demo.Options{Stdout: e.Stdout, Log: e.log, Version: e.Version, Keep: c.Bool("keep")})
			return err
		},
	}
}
