package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/templates"
)

func (e *env) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh",
		Description: "Add to ~/.bashrc:  eval \"$(sifkernel completion bash)\"\n" +
			"or to ~/.zshrc:     eval \"$(sifkernel completion zsh)\"",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes one shell: bash or zsh")
			}
			script, err := templates.Completion(c.Args().First())
			if err != nil {
				return &UsageError{Err: err}
			}
			_, err = e.Stdout.Write(script)
			return err
		},
	}
}
