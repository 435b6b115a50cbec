package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/config"
)

func (e *env) configCommand() *cli.Command {
	return &cli.Command{
		Name:   "config",
		Usage:  "show the effective configuration",
		Action: noSubcommand,
		Subcommands: []*cli.Command{{
			Name:  "show",
			Usage: "print every setting, its value and where it came from",
			Flags: []cli.Flag{jsonFlag},
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usagef("config show takes no arguments")
				}
				return e.configShow(c.Bool("json"))
			},
		}},
	}
}

func (e *env) configShow(asJSON bool) error {
	settings := e.cfg.Settings()
	if asJSON {
		return writeJSON(e.Stdout, struct {
			Schema   string           `json:"schema"`
			Settings []config.Setting `json:"settings"`
		}{SchemaConfig, settings})
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	table := ""
	for _, s := range settings {
		t, key, _ := strings.Cut(s.Key, ".")
		if t != table {
			if table != "" {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "[%s]\n", t)
			table = t
		}
		v, _ := json.Marshal(s.Value)
		fmt.Fprintf(tw, "%s = %s\t# %s\n", key, v, s.Source)
	}
	return tw.Flush()
}

// noSubcommand is the action of a command that only groups others.
func noSubcommand(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("%s: unknown command %q", c.Command.FullName(), c.Args().First())
	}
	return cli.ShowSubcommandHelp(c)
}
