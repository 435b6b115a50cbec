package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/cli"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"ok", nil, 0, ""},
		{"problems are already reported", fmt.Errorf("check: %w", cli.ErrProblemsFound), 1, ""},
		{"usage", &cli.UsageError{Err: errors.New("bad flag")}, 2, "bad flag"},
		{"failure", errors.New("disk on fire"), 1, "sifkernel: disk on fire"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if got := exitCode(tt.err, &buf); got != tt.code || !strings.Contains(buf.String(), tt.stderr) || (tt.stderr == "" && buf.Len() > 0) {
			t.Errorf("%s: exitCode = %d, stderr %q; want %d, %q", tt.name, got, buf.String(), tt.code, tt.stderr)
		}
	}
}

// TestBinary runs the built command: exit codes and a hook with no PATH,
// no HOME and a log file, as slurmd starts it.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sifkernel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "hook.log")
	conf := filepath.Join(dir, "config.toml")
	testkit.Must(t, os.WriteFile(conf, []byte("[log]\nfile = \""+logFile+"\"\n[metrics]\ndir = \""+filepath.Join(dir, "metrics")+"\"\n"), 0o644))
	tests := []struct {
		args []string
		env  []string
		code int
	}{
		{args: []string{"version"}, code: 0},
		{args: []string{"nosuchcommand"}, code: 2},
		{args: []string{"--config", filepath.Join(dir, "absent.toml"), "version"}, code: 1},
		{env: []string{"SLURM_SCRIPT_CONTEXT=prolog_slurmd", "SLURM_JOB_ID=77", "SIFKERNEL_CONFIG=" + conf}, code: 0},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = tt.env // no PATH, no HOME
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tt.code {
			t.Errorf("sifkernel %q (env %q) exited %d, want %d\n%s", tt.args, tt.env, code, tt.code, out)
		}
	}
	logged, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logged), "hook=prolog") || !strings.Contains(string(logged), "job=77") {
		t.Errorf("the hook did not log to log.file with hook and job: %v %q", err, logged)
	}
}
