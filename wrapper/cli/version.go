package cli

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

func (e *env) versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print sifkernel's version",
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				return writeJSON(e.Stdout, struct {
					Schema  string `json:"schema"`
					Version string `json:"version"`
					Go      string `json:"go"`
				}{SchemaVersion, e.Version, runtime.Version()})
			}
			_, err := fmt.Fprintf(e.Stdout, "sifkernel %s (%s)\n", e.Version, runtime.Version())
			return err
		},
	}
}
