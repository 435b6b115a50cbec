package slurm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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

// HookTimeout is Slurm's PrologEpilogTimeout as `scontrol show config`
// states it: Seconds, or Infinite where Slurm waits for ever (unset, or
// 65534 and up, Slurm's 16-bit INFINITE).
type HookTimeout struct {
	Seconds  int  `json:"seconds,omitempty"`
	Infinite bool `json:"infinite,omitempty"`
}

// PrologEpilogTimeout asks scontrol (by absolute path, within timeout)
// for the controller's PrologEpilogTimeout.
func PrologEpilogTimeout(ctx context.Context, scontrol string, timeout time.Duration) (HookTimeout, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, scontrol, "show", "config")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if conf := os.Getenv("SLURM_CONF"); conf != "" {
		cmd.Env = append(cmd.Env, "SLURM_CONF="+conf)
	}
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return HookTimeout{}, fmt.Errorf("%s show config: %w: %s", scontrol, err, strings.TrimSpace(errb.String()))
	}
	return ParseHookTimeout(out.String())
}

// ParseHookTimeout reads PrologEpilogTimeout from `scontrol show config`'s
// "Key = value" lines ("180", "180 sec", "65534", "INFINITE", "(null)").
func ParseHookTimeout(config string) (HookTimeout, error) {
	for _, line := range strings.Split(config, "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != "PrologEpilogTimeout" {
			continue
		}
		value = strings.TrimSuffix(strings.TrimSpace(value), " sec")
		switch strings.ToUpper(value) {
		case "", "INFINITE", "UNLIMITED", "(NULL)", "0":
			return HookTimeout{Infinite: true}, nil
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return HookTimeout{}, fmt.Errorf("PrologEpilogTimeout = %q: not a number of seconds", value)
		}
		if n >= 65534 {
			return HookTimeout{Infinite: true}, nil
		}
		return HookTimeout{Seconds: n}, nil
	}
	return HookTimeout{Infinite: true}, nil // not stated: Slurm's default waits for ever
}
