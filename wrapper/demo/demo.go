// Package demo shows a job's whole lifecycle on a simulated GPU node, in a
// temporary directory, with the same code the hooks and commands run: no
// root, no Slurm, no container started (`sifkernel demo`).
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Options are what the demo takes from the process.
type Options struct {
	Stdout  io.Writer
	Log     logrus.FieldLogger
	Version string
	Keep    bool // keep the temporary directory
}

// Result is what the demo saw happen, as values (its tests read these,
// not the text it prints).
type Result struct {
	Image          string           // the SIF image it built
	UserKernel     string           // the kernel.json `kernel add`'s code wrote
	JobKernel      *kernelspec.Spec // the job's copy of it
	Report         lifecycle.Report // the user part's report for the job
	Cached         []cache.Entry    // the node cache while the job ran
	JobDirGone     bool             // the job directory after the cleanup
	CachedAfter    int              // entries left after the cleanup
	RefsAfter      int              // their refs: none, with the job gone
	UserKernelSame bool             // the user's kernel.json after it all
}

// Run runs a job's lifecycle in a throwaway directory: a real SIF image, a
// kernel made by `kernel add`'s code, the user part as a job on an rtx-dev
// node with one GPU, the overlay next to the user's kernel, the cache, and
// the cleanup an Epilog does.
func Run(ctx context.Context, o Options) (Result, error) {
	e := &o
	keep := o.Keep
	tmp, err := os.MkdirTemp("", "sifkernel-demo-")
	if err != nil {
		return Result{}, err
	}
	if keep {
		fmt.Fprintf(e.Stdout, "(keeping %s)\n", tmp)
	} else {
		defer func() { _ = os.RemoveAll(tmp) }()
	}
	d := &demoRun{e: e, tmp: tmp, home: filepath.Join(tmp, "home")}
	steps := []func(context.Context) error{d.buildImage, d.addKernel, d.job, d.showCache, d.epilog}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return d.res, fmt.Errorf("demo: %w", err)
		}
	}
	fmt.Fprintln(e.Stdout, "\nThat was the lifecycle of one job. On a cluster, slurmd runs the same code as the\nProlog, TaskProlog and Epilog (see slurm/ and the README).")
	return d.res, nil
}

type demoRun struct {
	e          *Options
	tmp, home  string
	image      string
	userKernel string
	lc         *lifecycle.Env
	jobDir     string
	res        Result
}

func (d *demoRun) say(format string, args ...any) {
	fmt.Fprintf(d.e.Stdout, "\n== "+format+"\n", args...)
}

func (d *demoRun) buildImage(context.Context) error {
	d.image = filepath.Join(d.tmp, "scratch", "pytorch.sif")
	if err := os.MkdirAll(filepath.Dir(d.image), 0o755); err != nil {
		return err
	}
	d.res.Image = d.image
	d.say("a real SIF image on the \"shared filesystem\": %s", d.image)
	return sifimage.Build(d.image, bytes.NewReader(sifimage.Minimal))
}

// addKernel writes the user's kernel as `kernel add pytorch --image ...` does.
func (d *demoRun) addKernel(ctx context.Context) error {
	rt := filepath.Join(d.tmp, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	if err := os.MkdirAll(filepath.Dir(rt), 0o755); err != nil {
		return err
	}
	// A stand-in that only answers --version: the demo runs no container.
	if err := os.WriteFile(rt, []byte("#!/bin/sh\necho 'apptainer version 1.4.1 (sifkernel demo stand-in)'\n"), 0o755); err != nil {
		return err
	}
	cfg := config.Defaults()
	cfg.Apptainer.Path = rt
	u := &kernels.User{Config: cfg, Getenv: func(string) string { return "" }, LookupEnv: func(string) (string, bool) { return "", false },
		Home: d.home, Log: d.e.Log, Stderr: io.Discard, Now: time.Now, Version: d.e.Version}
	d.say("the user's kernel, as `sifkernel kernel add pytorch --image %s` writes it", d.image)
	a, err := u.Add(ctx, kernels.AddOptions{Name: "pytorch", Image: d.image, DisplayName: "PyTorch (demo)",
		Language: "python", GPU: kernelspec.GPUAuto})
	if err != nil {
		return err
	}
	d.userKernel, d.res.UserKernel = a.File, a.File
	fmt.Fprintln(d.e.Stdout, a.File)
	b, err := os.ReadFile(d.userKernel)
	if err != nil {
		return err
	}
	_, err = d.e.Stdout.Write(b)
	return err
}

// job runs the user part as job 1001 on an rtx-dev node with GPU 0.
func (d *demoRun) job(ctx context.Context) error {
	cfg := config.Defaults()
	cfg.Cache.Dir = filepath.Join(d.tmp, "node", "cache")
	cfg.Apptainer.Search = []string{filepath.Join(d.tmp, "opt/apps/tacc-apptainer/*/bin/apptainer")}
	env := map[string]string{
		"HOME": d.home, "TMPDIR": filepath.Join(d.tmp, "node"), "SLURM_JOB_ID": "1001", "SLURM_JOB_PARTITION": "rtx-dev",
		"SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0", "JUPYTER_RUNTIME_DIR": filepath.Join(d.home, ".local/share/jupyter/runtime"),
	}
	if err := os.MkdirAll(env["TMPDIR"], 0o755); err != nil {
		return err
	}
	d.lc = &lifecycle.Env{Config: cfg, Log: d.e.Log, Version: d.e.Version, Stdout: d.e.Stdout, Now: time.Now,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	d.say("job 1001 starts on an rtx-dev node with GPU 0 (SLURM_JOB_PARTITION=rtx-dev, SLURM_JOB_GPUS=0)")
	job, err := d.lc.JobID("")
	if err != nil {
		return err
	}
	ex, err := d.lc.Activate(ctx, job, "demo")
	if err != nil {
		return err
	}
	d.jobDir = ex.JobDir
	fmt.Fprintf(d.e.Stdout, "the job's environment gets:\n  JUPYTER_PATH=%s\n  SIFKERNEL_JOB_DIR=%s\n", ex.JupyterPath, ex.JobDir)
	overlay := filepath.Join(ex.JobDir, "jupyter", "kernels", "pytorch", kernelspec.FileName)
	d.say("the job's copy of the kernel (Jupyter finds it first): %s", overlay)
	a, err := os.ReadFile(d.userKernel)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(overlay)
	if err != nil {
		return err
	}
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: "user's kernel.json", ToFile: "job's kernel.json", Context: 2,
	})
	fmt.Fprint(d.e.Stdout, diff)
	r, err := lifecycle.ReadReport(ex.JobDir)
	if err != nil {
		return err
	}
	d.res.Report = r
	if d.res.JobKernel, err = kernelspec.Parse(overlay, b); err != nil {
		return err
	}
	fmt.Fprintln(d.e.Stdout, "why:")
	for _, k := range r.Kernels {
		for _, c := range k.Changes {
			fmt.Fprintf(d.e.Stdout, "  - %s\n", c)
		}
	}
	return nil
}

func (d *demoRun) showCache(context.Context) error {
	c, err := d.lc.OpenUserCache(0)
	if err != nil {
		return err
	}
	es, err := c.Entries()
	if err != nil {
		return err
	}
	d.res.Cached = es
	d.say("the node cache (%s)", c.Dir())
	for _, en := range es {
		fmt.Fprintf(d.e.Stdout, "  %s  %s  used by job %s  (from %s)\n", en.Key, cache.HumanBytes(en.Size), strings.Join(en.Refs, ","), en.Source)
	}
	return nil
}

func (d *demoRun) epilog(context.Context) error {
	d.say("the job ends: the Epilog's cleanup removes the job directory and its refs; the copy stays, used by no job, for keep_warm (%v): the user's next job finds it", d.lc.Config.Cache.KeepWarm.Duration)
	job, err := d.lc.JobID("")
	if err != nil {
		return err
	}
	if err := d.lc.Cleanup(lifecycle.CleanupOptions{Job: job, GC: true}); err != nil {
		return err
	}
	c, err := d.lc.OpenUserCache(0)
	if err != nil {
		return err
	}
	es, err := c.Entries()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(d.jobDir, "node.json"))
	d.res.JobDirGone, d.res.CachedAfter = os.IsNotExist(statErr), len(es)
	for _, en := range es {
		d.res.RefsAfter += len(en.Refs)
	}
	fmt.Fprintf(d.e.Stdout, "  job directory: %s\n  cached images: %d, used by %d jobs\n", map[bool]string{true: "gone", false: "still there"}[os.IsNotExist(statErr)], len(es), d.res.RefsAfter)
	if b, err := os.ReadFile(d.userKernel); err != nil || !bytes.Contains(b, []byte(d.image)) {
		return fmt.Errorf("the user's kernel changed")
	}
	d.res.UserKernelSame = true
	fmt.Fprintln(d.e.Stdout, "  the user's own kernel.json: unchanged")
	return nil
}
