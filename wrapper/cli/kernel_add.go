package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/templates"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "make a kernelspec that runs a kernel inside a container image",
		ArgsUsage: "NAME",
		Description: "Writes <data dir>/kernels/NAME/kernel.json. --image takes a .sif path or a\n" +
			"docker:// (or oras://, library://) reference, which is pulled once with\n" +
			"`apptainer pull` into kernel.pull_dir.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Aliases: []string{"i"}, Usage: "`IMAGE`: a .sif file or docker://REF"},
			&cli.StringFlag{Name: "display-name", Usage: "name shown in Jupyter (default: from the language and image)"},
			&cli.StringFlag{Name: "language", Value: "python", Usage: "kernel language: " + strings.Join(templates.Languages(), ", ")},
			&cli.StringSliceFlag{Name: "bind", Aliases: []string{"B"}, Usage: "bind `SRC[:DST]` into the container (repeatable)"},
			&cli.StringSliceFlag{Name: "env", Usage: "set `NAME=VALUE` inside the container (repeatable)"},
			&cli.StringFlag{Name: "gpu", Value: kernelspec.GPUAuto, Usage: "auto (each job decides), always or never"},
			&cli.BoolFlag{Name: "no-stage", Usage: "never copy the image to node-local disk"},
			dirFlag,
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing kernel (its kernel.json is kept as a backup)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("kernel add takes one NAME, e.g. sifkernel kernel add bert --image bert.sif")
			}
			a, err := e.user().Add(c.Context, kernels.AddOptions{
				Name: c.Args().First(), Image: c.String("image"), DisplayName: c.String("display-name"),
				Language: c.String("language"), Binds: c.StringSlice("bind"), Env: c.StringSlice("env"),
				GPU: c.String("gpu"), NoStage: c.Bool("no-stage"), DataDir: c.String("dir"), Force: c.Bool("force"),
			})
			if a.Backup != "" {
				fmt.Fprintf(e.Stdout, "kept the previous %s as %s\n", kernelspec.FileName, a.Backup)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "created kernel %q (%s) in %s\n", c.Args().First(), a.DisplayName, a.File)
			fmt.Fprintf(e.Stdout, "check it with: sifkernel kernel check %s\n", c.Args().First())
			return nil
		},
	}
}
