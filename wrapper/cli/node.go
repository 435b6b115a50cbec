package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/node"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
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
			hooks := e.hookTimeoutCheck(c.Context)
			jobPath := e.lifecycle().JobPath(e.Home)
			if c.Bool("json") {
				return writeJSON(e.Stdout, struct {
					Schema    string             `json:"schema"`
					GPU       node.GPU           `json:"gpu"`
					Host      node.Host          `json:"host"`
					Apptainer *apptainer.Runtime `json:"apptainer"`
					Jupyter   kernelspec.Jupyter `json:"jupyter"`
					Hooks     hookTimeout        `json:"hook_timeout"`
					JobPath   lifecycle.JobPath  `json:"job_path"`
				}{SchemaNode, g, h, runtime, jup.Described(), hooks, jobPath})
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
			fmt.Fprintf(e.Stdout, "hooks: %s\n", hooks.Says)
			fmt.Fprintf(e.Stdout, "job kernels: %s%s\n", map[bool]string{true: "warning: "}[jobPath.Warning], jobPath.Says)
			return nil
		},
	}
}

// hookTimeout is Slurm's PrologEpilogTimeout against what prolog.timeout
// needs (config.Config.PrologEpilogTimeout), for `node`.
type hookTimeout struct {
	Slurm  *slurm.HookTimeout `json:"slurm,omitempty"` // nil: scontrol could not say
	Needed int                `json:"needed_seconds"`
	OK     *bool              `json:"ok,omitempty"` // nil: not checked
	Says   string             `json:"says"`
}

// scontrolTimeout bounds `scontrol show config` for node.
const scontrolTimeout = 5 * time.Second

// hookTimeoutCheck asks scontrol (beside slurm.squeue) for the cluster's
// PrologEpilogTimeout and says whether prolog.timeout fits it.
func (e *env) hookTimeoutCheck(ctx context.Context) hookTimeout {
	need := e.cfg.PrologEpilogTimeout()
	h := hookTimeout{Needed: int(need.Seconds())}
	scontrol := filepath.Join(filepath.Dir(e.cfg.Slurm.Squeue), "scontrol")
	st, err := slurm.PrologEpilogTimeout(ctx, scontrol, scontrolTimeout)
	if err != nil {
		h.Says = fmt.Sprintf("PrologEpilogTimeout not checked (%v); it must be at least %d (prolog.timeout %s + %s)",
			err, h.Needed, e.cfg.Prolog.Timeout.Duration, config.SlurmMargin)
		return h
	}
	ok := st.Infinite || time.Duration(st.Seconds)*time.Second >= need
	h.Slurm, h.OK = &st, &ok
	switch {
	case st.Infinite:
		h.Says = fmt.Sprintf("PrologEpilogTimeout is unlimited: fits prolog.timeout %s (Slurm then never kills a hook; %d would bound it)", e.cfg.Prolog.Timeout.Duration, h.Needed)
	case ok:
		h.Says = fmt.Sprintf("PrologEpilogTimeout %d fits prolog.timeout %s (at least %d)", st.Seconds, e.cfg.Prolog.Timeout.Duration, h.Needed)
	default:
		h.Says = fmt.Sprintf("warning: PrologEpilogTimeout %d is below prolog.timeout %s + %s: a Prolog that runs to its deadline drains the node; set PrologEpilogTimeout=%d in slurm.conf, or prolog.timeout = \"%s\"",
			st.Seconds, e.cfg.Prolog.Timeout.Duration, config.SlurmMargin, h.Needed, time.Duration(st.Seconds)*time.Second-config.SlurmMargin)
	}
	return h
}
