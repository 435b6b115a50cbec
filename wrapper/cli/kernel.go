package cli

import (
	"github.com/urfave/cli/v2"
)

func (e *env) kernelCommand() *cli.Command {
	return &cli.Command{
		Name:   "kernel",
		Usage:  "create, list, check, repair and remove containerized kernelspecs",
		Action: noSubcommand,
		Subcommands: []*cli.Command{
			e.kernelAddCommand(),
			e.kernelListCommand(),
			e.kernelCheckCommand(),
			e.kernelFixCommand(),
			e.kernelRemoveCommand(),
		},
	}
}
