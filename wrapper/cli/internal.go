package cli

import (
	"encoding/json"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
)

// internalCommand is what root hooks run as the job user: one
// lifecycle.ChildRequest, encoded and decoded by the wrapper package alone.
// The user part prints its JSON report on stdout for the hook to log.
func (e *env) internalCommand() *cli.Command {
	return &cli.Command{
		Name:            lifecycle.ChildCommand,
		Hidden:          true,
		Usage:           "run by root hooks as the job user; not for people",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			req, err := lifecycle.ParseChildRequest(c.Args().Slice())
			if err != nil {
				return &UsageError{Err: err}
			}
			reply, err := e.lifecycle().ServeChild(c.Context, req)
			if err != nil || reply.Empty() {
				return err
			}
			return json.NewEncoder(e.Stdout).Encode(reply)
		},
	}
}
