package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Bcast stages images on every node of the job while reading each from the
// shared filesystem once: sbcast copies it into the job directory of every
// node (Slurm fans it out), then one task per node (srun) checks the copy
// and publishes it into that node's cache. It needs the Prolog's job
// directory on every node, and returns one result per node and image.
func (e *Env) Bcast(ctx context.Context, job slurm.JobID, images []string) ([]cache.Result, error) {
	dir, ok := e.preparedJobDir(job)
	if !ok {
		return nil, fmt.Errorf("stage --bcast needs the sifkernel Prolog on every node of the job (no job directory of yours for job %s in %s here); use stage without --bcast", job, e.Config.Cache.Dir)
	}
	nodes := slurm.NumNodes(e.getenv)
	var out []cache.Result
	var errs []error
	for _, img := range images {
		rs, err := e.bcastOne(ctx, dir, img, job, nodes)
		out = append(out, rs...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func (e *Env) bcastOne(ctx context.Context, dir, img string, job slurm.JobID, nodes string) ([]cache.Result, error) {
	abs, err := filepath.Abs(img)
	if err != nil {
		return nil, err
	}
	key, err := cache.Key(abs)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(dir, "bcast-"+key+".sif")
	if out, err := exec.CommandContext(ctx, e.Config.Slurm.Sbcast, "--force", abs, dest).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sbcast %s: %w: %s", abs, err, strings.TrimSpace(string(out)))
	}
	args := []string{"--overlap", "--ntasks-per-node=1", "--kill-on-bad-exit=0"}
	if nodes != "" {
		args = append(args, "--nodes="+nodes, "--ntasks="+nodes)
	}
	self := e.Self
	args = append(args, self)
	if e.ConfigFile != "" {
		args = append(args, "--config", e.ConfigFile)
	}
	args = append(args, AdoptArgs(job, dest, abs)...)
	cmd := exec.CommandContext(ctx, e.Config.Slurm.Srun, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var results []cache.Result
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r cache.Result
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Source != "" {
			results = append(results, r)
		}
	}
	if runErr != nil {
		return results, fmt.Errorf("srun publishing %s: %w: %s", abs, runErr, strings.TrimSpace(stderr.String()))
	}
	return results, nil
}

// The stage command as srun runs it on every node of a --bcast: the command
// and the flags AdoptArgs writes. The cli's stage command takes its flags'
// names from these, so neither side spells one the other does not know.
const (
	StageCommand = "stage"
	StageJobFlag = "job"
	// StageAdoptFlag is hidden: it publishes COPY, a copy of the one IMAGE
	// that sbcast wrote to this node.
	StageAdoptFlag = "adopt"
	StageJSONFlag  = "json"
)

// AdoptArgs is the argv after the binary (and its --config) that publishes
// copy, sbcast's copy of image, for job on one node, reporting as JSON.
func AdoptArgs(job slurm.JobID, copy, image string) []string {
	return []string{StageCommand, "--" + StageJSONFlag, "--" + StageJobFlag, job.String(), "--" + StageAdoptFlag, copy, image}
}
