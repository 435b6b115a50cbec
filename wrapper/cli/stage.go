package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// SchemaStage names the JSON output of stage.
const SchemaStage = "sifkernel/stage/v1"

func (e *env) stageCommand() *cli.Command {
	return &cli.Command{
		Name:      lifecycle.StageCommand,
		Usage:     "copy images to the node-local cache; prints the path to use for each",
		ArgsUsage: "IMAGE...",
		Description: "Each image is copied once per node and user into cache.dir; later calls\n" +
			"(and other jobs) reuse the copy. When an image cannot be staged (no space,\n" +
			"too slow, unreadable) the path printed is the source, and the exit code is 1.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: lifecycle.StageJobFlag, Usage: "record the copies as used by job `ID` (default: $" + slurm.VarJobID + ")"},
			&cli.DurationFlag{Name: "timeout", Usage: "longest one image may take (default: cache.stage_timeout)"},
			&cli.BoolFlag{Name: "bcast", Usage: "in a multi-node job: read each image once and fan it out to every node with sbcast"},
			&cli.StringFlag{Name: lifecycle.StageAdoptFlag, Hidden: true, Usage: "publish `FILE`, a copy of the one IMAGE made by sbcast"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("stage needs at least one IMAGE")
			}
			job, err := slurm.JobFrom(c.String(lifecycle.StageJobFlag), e.Getenv)
			if err != nil {
				return &UsageError{Err: err}
			}
			switch {
			case c.String(lifecycle.StageAdoptFlag) != "":
				return e.adopt(c, c.String(lifecycle.StageAdoptFlag), c.Args().Slice(), job)
			case c.Bool("bcast"):
				return e.bcast(c, c.Args().Slice(), job, c.Bool(lifecycle.StageJSONFlag))
			}
			return e.stage(c, c.Args().Slice(), job, c.Duration("timeout"), c.Bool(lifecycle.StageJSONFlag))
		},
	}
}

func (e *env) openCache(timeout time.Duration) (*cache.Cache, error) {
	return e.lifecycle().OpenUserCache(timeout)
}

func (e *env) stage(c *cli.Context, images []string, job slurm.JobID, timeout time.Duration, asJSON bool) error {
	ch, err := e.openCache(timeout)
	if err != nil {
		return err
	}
	results := make([]cache.Result, 0, len(images))
	var failed []error
	lc := e.lifecycle()
	for _, img := range images {
		hit, ok, note := lc.SiteLookup(img)
		if ok {
			r := cache.Result{Source: img, Path: hit.Path, Key: hit.Key, Staged: true, Bytes: hit.Size, Site: true}
			results = append(results, r)
			if !asJSON {
				e.printStaged(r)
			}
			continue
		}
		r, err := ch.Stage(c.Context, img, job, e.progress(img, asJSON))
		if err != nil {
			r.Reason = err.Error()
			failed = append(failed, err)
		}
		r.SiteNote = note
		results = append(results, r)
		if !asJSON {
			e.printStaged(r)
		}
	}
	if asJSON {
		if err := writeJSON(e.Stdout, struct {
			Schema string         `json:"schema"`
			Cache  string         `json:"cache"`
			Images []cache.Result `json:"images"`
		}{SchemaStage, ch.Dir(), results}); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images not staged: %w", len(failed), len(images), errors.Join(failed...))
	}
	return nil
}

func (e *env) printStaged(r cache.Result) {
	switch {
	case !r.Staged:
		fmt.Fprintf(e.Stdout, "%s\t# not staged (%s): use the source\n", r.Path, r.Reason)
	case r.Site:
		fmt.Fprintf(e.Stdout, "%s\t# the site cache's copy, shared by every user of this node\n", r.Path)
	case r.Copied:
		fmt.Fprintf(e.Stdout, "%s\t# copied %s in %s\n", r.Path, cache.HumanBytes(r.Bytes), r.Took.Round(time.Millisecond))
	default:
		fmt.Fprintf(e.Stdout, "%s\t# cached\n", r.Path)
	}
	if r.SiteNote != "" && !r.Site {
		fmt.Fprintf(e.Stdout, "\t# %s\n", r.SiteNote)
	}
}

// progress draws a bar on a terminal; hooks and pipes get log records only.
func (e *env) progress(image string, quiet bool) cache.Progress {
	f, ok := e.Stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
		if bar == nil {
			bar = progressbar.DefaultBytes(total, "staging "+image)
		}
		_ = bar.Set64(done)
		if done >= total {
			_ = bar.Finish()
		}
	}
}

// bcast stages on every node of the job through sbcast.
func (e *env) bcast(c *cli.Context, images []string, job slurm.JobID, asJSON bool) error {
	if job.IsZero() {
		return usagef("stage --bcast runs inside a Slurm job")
	}
	results, err := e.lifecycle().Bcast(c.Context, job, images)
	if asJSON {
		if jerr := writeJSON(e.Stdout, struct {
			Schema string         `json:"schema"`
			Images []cache.Result `json:"images"`
		}{SchemaStage, results}); jerr != nil {
			return jerr
		}
	} else {
		for _, r := range results {
			e.printStaged(r)
		}
	}
	return err
}

// adopt is one node's part of --bcast: it prints one JSON line.
func (e *env) adopt(c *cli.Context, file string, images []string, job slurm.JobID) error {
	if len(images) != 1 {
		return usagef("--adopt takes one IMAGE")
	}
	ch, err := e.openCache(0)
	if err != nil {
		return err
	}
	r, err := ch.Adopt(c.Context, images[0], file, job)
	if err != nil {
		r.Reason = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(e.Stdout, string(b))
	return err
}
