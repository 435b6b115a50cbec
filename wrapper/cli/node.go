package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/node"
)

// SchemaNode names the JSON output of node.
const SchemaNode = "sifkernel/node/v1"

func (e *env) nodeCommand() *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "show what sifkernel sees on this node: GPUs (and why), host, cache filesystem",
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			g := node.DetectGPU(node.Env{LookupEnv: e.LookupEnv, GPUPartitions: e.cfg.Node.GPUPartitions})
			h := node.DetectHost(e.cfg.Cache.Dir)
			rt, rtErr := e.user().Finder().Find(c.Context)
			var runtime *apptainer.Runtime
			if rtErr == nil {
				runtime = &rt
			}
			jup := e.user().Env().Model()
			if c.Bool("json") {
				return writeJSON(e.Stdout, struct {
					Schema    string             `json:"schema"`
					GPU       node.GPU           `json:"gpu"`
					Host      node.Host          `json:"host"`
					Apptainer *apptainer.Runtime `json:"apptainer"`
					Jupyter   kernelspec.Jupyter `json:"jupyter"`
				}{SchemaNode, g, h, runtime, jup.Described()})
			}
			if runtime != nil {
				fmt.Fprintf(e.Stdout, "apptainer: %s (version %s, found by %s)\n", rt.Path, dash(rt.Version), rt.Rule)
			} else {
				fmt.Fprintf(e.Stdout, "apptainer: %v\n", rtErr)
			}
			fmt.Fprintf(e.Stdout, "GPUs: %s (%s)\n", yesNo(g.Present), g.Reason)
			if g.Warning != "" {
				fmt.Fprintf(e.Stdout, "  warning: %s\n", g.Warning)
			}
			for _, f := range g.Facts {
				fmt.Fprintf(e.Stdout, "  %s = %s\n", f.Source, f.Value)
			}
			fmt.Fprintf(e.Stdout, "host: %s, %s, kernel %s, %d CPUs, %s memory (%s available)\n",
				h.Hostname, h.OS, h.Kernel, h.CPUs, cache.HumanBytes(int64(h.MemTotal)), cache.HumanBytes(int64(h.MemAvail)))
			fmt.Fprintf(e.Stdout, "cache: %s on %s: %s free of %s\n", h.CacheDir, h.CacheFS, cache.HumanBytes(int64(h.CacheFree)), cache.HumanBytes(int64(h.CacheTotal)))
			fmt.Fprintf(e.Stdout, "jupyter: kernels are found as by the %s\n", jup)
			return nil
		},
	}
}
