package slurm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestFromEnv(t *testing.T) {
	base := map[string]string{"SLURM_SCRIPT_CONTEXT": "prolog_slurmd", "SLURM_JOB_ID": "4242", "SLURM_JOB_UID": "1001",
		"SLURM_JOB_GID": "1001", "SLURM_JOB_USER": "alice", "SLURM_JOB_PARTITION": "rtx-dev", "SLURMD_NODENAME": "c001"}
	tests := []struct {
		name, key, value, want string
	}{
		{name: "ok"},
		{name: "dot dot job", key: "SLURM_JOB_ID", value: "../x", want: "not a Slurm job id"},
		{name: "empty job", key: "SLURM_JOB_ID", value: "", want: "not a Slurm job id"},
		{name: "job with newline", key: "SLURM_JOB_ID", value: "1\n2", want: "not a Slurm job id"},
		{name: "bad uid", key: "SLURM_JOB_UID", value: "root", want: "SLURM_JOB_UID"},
		{name: "negative gid", key: "SLURM_JOB_GID", value: "-1", want: "SLURM_JOB_GID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			if tt.key != "" {
				env[tt.key] = tt.value
			}
			c, err := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if tt.want == "" {
				if err != nil || c.JobID.String() != "4242" || c.UID != 1001 || c.Partition != "rtx-dev" || c.Node != "c001" {
					t.Errorf("FromEnv = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FromEnv error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTaskOutput(t *testing.T) {
	var buf bytes.Buffer
	o := TaskOutput{W: &buf}
	if err := o.Export("JUPYTER_PATH", "/tmp/sifkernel/jobs/1/jupyter:/opt/jp"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, value string }{
		{"X", "a\nexport LD_PRELOAD=/tmp/evil.so"}, {"X", "a\rb"}, {"X", "a\x00b"}, {"BAD-NAME", "v"}, {"1X", "v"},
	} {
		if err := o.Export(bad.name, bad.value); err == nil {
			t.Errorf("Export(%q, %q) accepted", bad.name, bad.value)
		}
	}
	want := "export JUPYTER_PATH=/tmp/sifkernel/jobs/1/jupyter:/opt/jp\n"
	if buf.String() != want {
		t.Errorf("output %q, want %q", buf.String(), want)
	}
}

func TestLookupUser(t *testing.T) {
	u, err := LookupUser(os.Getuid())
	if err != nil || u.Home == "" || u.Name == "" {
		t.Errorf("LookupUser(self) = %+v, %v", u, err)
	}
	if _, err := LookupUser(1 << 30); err == nil {
		t.Error("LookupUser of an unknown uid succeeded")
	}
}

func TestRunningJobs(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "squeue")
	testkit.Must(t, os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >"+dir+"/args\nprintf '101\\n202\\nbogus\\n'\n"), 0o755))
	jobs, err := RunningJobs(context.Background(), fake, "c001", time.Second)
	if err != nil || !jobs[JobID{"101"}] || !jobs[JobID{"202"}] || len(jobs) != 2 {
		t.Errorf("RunningJobs = %v, %v", jobs, err)
	}
	args := testkit.ReadFile(t, filepath.Join(dir, "args"))
	if !strings.Contains(string(args), "--nodelist=c001") {
		t.Errorf("squeue args %q", args)
	}
	slow := filepath.Join(dir, "slow")
	testkit.Must(t, os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 10\n"), 0o755))
	start := time.Now()
	if _, err := RunningJobs(context.Background(), slow, "", 200*time.Millisecond); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("a hanging squeue: %v after %v", err, time.Since(start))
	}
	failing := filepath.Join(dir, "failing")
	testkit.Must(t, os.WriteFile(failing, []byte("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n"), 0o755))
	if _, err := RunningJobs(context.Background(), failing, "", time.Second); err == nil || !strings.Contains(err.Error(), "Unable to contact") {
		t.Errorf("a failing squeue: %v", err)
	}
}

func TestJobIDText(t *testing.T) {
	var j JobID
	for _, bad := range []string{"../x", "1/../../etc", "..", "4242\n", "12345.batch", "c1", "123456789012345678901"} {
		if err := j.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
	testkit.Must(t, j.UnmarshalText([]byte("4242")))
	if b, _ := j.MarshalText(); string(b) != "4242" || j.IsZero() {
		t.Errorf("job 4242 reads back as %q", b)
	}
	testkit.Must(t, j.UnmarshalText(nil))
	if !j.IsZero() {
		t.Error("an empty id is not the zero job")
	}
}

func TestHook(t *testing.T) {
	for script, want := range map[string]string{"prolog_slurmd": Prolog, "epilog_slurmd": Epilog, "prolog_task": TaskProlog, "epilog_task": "", "": ""} {
		got, ok := Hook(script)
		if got != want || ok != (want != "") {
			t.Errorf("Hook(%q) = %q, %v; want %q", script, got, ok, want)
		}
	}
}

func TestNodeName(t *testing.T) {
	if n, from := NodeName(func(string) string { return "c001-2" }); n != "c001-2" || from != "SLURMD_NODENAME" {
		t.Errorf("NodeName with SLURMD_NODENAME = %q from %s", n, from)
	}
	h, _ := os.Hostname()
	short, _, _ := strings.Cut(h, ".")
	if n, from := NodeName(func(string) string { return "" }); n != short || from != "hostname" || strings.Contains(n, ".") {
		t.Errorf("NodeName without Slurm = %q from %s, want the short host name %q", n, from, short)
	}
}

func TestMatchPartition(t *testing.T) {
	globs := []string{"rtx*", "gpu-a100"}
	for part, want := range map[string]bool{
		"rtx-dev": true, "gpu-a100": true, "normal": false, "": false,
		"normal,rtx-dev": true, "normal, gpu-a100": true, "normal,development": false, "[": false,
	} {
		if got := MatchPartition(globs, part); got != want {
			t.Errorf("MatchPartition(%q) = %v, want %v", part, got, want)
		}
	}
	if MatchPartition(nil, "rtx") || MatchPartition([]string{"["}, "rtx") {
		t.Error("no glob, or a broken one, matched")
	}
}

func TestParseHookTimeout(t *testing.T) {
	tests := []struct {
		config string
		want   HookTimeout
		bad    bool
	}{
		{"AccountingStorageType   = (null)\nPrologEpilogTimeout     = 180\nPrologFlags             = Alloc\n", HookTimeout{Seconds: 180}, false},
		{"PrologEpilogTimeout = 180 sec\n", HookTimeout{Seconds: 180}, false},
		{"PrologEpilogTimeout     = 65534\n", HookTimeout{Infinite: true}, false},
		{"PrologEpilogTimeout     = INFINITE\n", HookTimeout{Infinite: true}, false},
		{"PrologFlags = Alloc\n", HookTimeout{Infinite: true}, false},
		{"PrologEpilogTimeout = soon\n", HookTimeout{}, true},
	}
	for _, tt := range tests {
		got, err := ParseHookTimeout(tt.config)
		if got != tt.want || (err != nil) != tt.bad {
			t.Errorf("ParseHookTimeout(%q) = %+v, %v; want %+v (error: %v)", tt.config, got, err, tt.want, tt.bad)
		}
	}
}
