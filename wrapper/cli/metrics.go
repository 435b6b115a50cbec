package cli

import (
	"github.com/urfave/cli/v2"
)

func (e *env) metricsCommand() *cli.Command {
	return &cli.Command{
		Name:  "metrics",
		Usage: "print the node cache's state and the hooks' counters for Prometheus",
		Description: "Writes Prometheus' text format: each user's cached images and bytes, the cache file\n" +
			"system's size and free bytes, hits, misses, bytes and seconds staged, stage timeouts,\n" +
			"and hook runs and failures by reason (counted by the root hooks in metrics.dir).\n" +
			"As root it covers every user; as a user, that user. --textfile DIR writes\n" +
			"DIR/sifkernel.prom atomically for node_exporter's textfile collector.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "textfile", Usage: "write `DIR`/sifkernel.prom instead of standard output"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("metrics takes no arguments")
			}
			s, err := e.lifecycle().Metrics(c.Context)
			if err != nil {
				return err
			}
			if dir := c.String("textfile"); dir != "" {
				return s.WriteTextfile(dir)
			}
			return s.WriteText(e.Stdout)
		},
	}
}
