package slurm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// RunningJobs asks squeue (by absolute path) for the ids of the jobs that
// are still on node: pending with a node, running, configuring, completing
// or suspended. Only sweep calls it, never a Prolog or Epilog.
func RunningJobs(ctx context.Context, squeue, node string, timeout time.Duration) (map[JobID]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"--noheader", "--format=%A"}
	if node != "" {
		args = append(args, "--nodelist="+node)
	}
	cmd := exec.CommandContext(ctx, squeue, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if conf := os.Getenv("SLURM_CONF"); conf != "" {
		cmd.Env = append(cmd.Env, "SLURM_CONF="+conf) // a site's slurm.conf outside /etc/slurm
	}
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", squeue, err, strings.TrimSpace(errb.String()))
	}
	jobs := map[JobID]bool{}
	for _, f := range strings.Fields(out.String()) {
		if id, err := ParseJobID(f); err == nil {
			jobs[id] = true
		}
	}
	return jobs, nil
}
