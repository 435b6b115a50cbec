package cli

import (
	"encoding/json"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper"
	"github.com/urfave/cli/v2"
)

// internalCommand holds what root hooks run as the job user. Each prints a
// JSON report on stdout for the hook to log.
func (e *env) internalCommand() *cli.Command {
	return &cli.Command{
		Name:   "internal",
		Hidden: true,
		Usage:  "run by root hooks as the job user; not for people",
		Action: noSubcommand,
		Subcommands: []*cli.Command{
			{
				Name: "user-part",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "job"}, &cli.StringFlag{Name: "job-dir"}, &cli.StringFlag{Name: "home"},
					&cli.StringFlag{Name: "created-by"}, &cli.BoolFlag{Name: "stage"}, &cli.DurationFlag{Name: "budget"},
				},
				Action: func(c *cli.Context) error {
					r, err := e.lifecycle().UserPart(c.Context, wrapper.UserPartOptions{
						Job: c.String("job"), JobDir: c.String("job-dir"), Home: c.String("home"),
						Stage: c.Bool("stage"), Budget: c.Duration("budget"), CreatedBy: c.String("created-by"),
					})
					if err != nil {
						return err
					}
					return json.NewEncoder(e.Stdout).Encode(r)
				},
			},
			{
				Name:  "user-cleanup",
				Flags: []cli.Flag{&cli.StringFlag{Name: "job"}, &cli.BoolFlag{Name: "root-job-dir"}, &cli.BoolFlag{Name: "gc"}},
				Action: func(c *cli.Context) error {
					return e.lifecycle().Cleanup(wrapper.CleanupOptions{Job: c.String("job"), RootJobDir: c.Bool("root-job-dir"), GC: c.Bool("gc")})
				},
			},
			{
				Name:  "user-sweep",
				Flags: []cli.Flag{&cli.StringFlag{Name: "running"}},
				Action: func(c *cli.Context) error {
					running := map[string]bool{}
					for _, j := range strings.Split(c.String("running"), ",") {
						if j != "" {
							running[j] = true
						}
					}
					_, err := e.lifecycle().SweepUser(running)
					return err
				},
			},
		},
	}
}
