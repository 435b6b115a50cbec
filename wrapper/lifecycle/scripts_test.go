package lifecycle

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/cache"
)

func (s *site) userTmp(t *testing.T) string {
	tmp := filepath.Join(s.base, "tmp")
	testkit.Must(t, os.Mkdir(tmp, 0o1777))
	testkit.Must(t, os.Chmod(tmp, 0o1777))
	return tmp
}

func TestActivate(t *testing.T) {
	s := newSite(t)
	tmp := s.userTmp(t)
	for shell, prefix := range map[string]string{"sh": "export JUPYTER_PATH='", "csh": "setenv JUPYTER_PATH '", "fish": "set -gx JUPYTER_PATH '"} {
		out, err := s.asAlice(t, []string{"TMPDIR=" + tmp}, "activate", "--shell", shell, "--job", "88")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, prefix) {
			t.Errorf("activate --shell %s printed %q", shell, out)
		}
	}
	out, _ := s.asAlice(t, []string{"TMPDIR=" + tmp}, "activate", "--job", "88")
	cmd := exec.Command("/bin/sh", "-c", out+`test -f "$SIFKERNEL_JOB_DIR/jupyter/kernels/bert/kernel.json" && echo "$JUPYTER_PATH"`)
	got, err := cmd.Output()
	if err != nil || !strings.Contains(string(got), filepath.Join(tmp, "sifkernel-1234")) {
		t.Errorf("eval of activate's output: %v %q", err, got)
	}
	delete(s.env, "SLURM_JOB_ID")
	if _, err := s.asAlice(t, []string{"TMPDIR=" + tmp}, "activate"); err == nil {
		t.Error("activate outside a job without --job succeeded")
	}
}

// TestRunForwardsSignalsAndCleansUp: run passes SIGTERM to its command,
// exits with the command's status, and removes the job directory it made.
func TestRunForwardsSignalsAndCleansUp(t *testing.T) {
	s := newSite(t)
	tmp := s.userTmp(t)
	env := []string{"TMPDIR=" + tmp}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(binary, "run", "--", "/bin/sh", "-c",
		`trap 'echo got-term; exit 7' TERM; test -f "$SIFKERNEL_JOB_DIR/node.json" && echo ready; while :; do sleep 0.05; done`)
	cmd.Env = append(env, "HOME="+s.home, "SIFKERNEL_CONFIG="+s.config, "PATH=/usr/bin:/bin")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("the command did not start with the job's kernels: %q", sc.Text())
	}
	testkit.Must(t, cmd.Process.Signal(syscall.SIGTERM))
	sc.Scan()
	if sc.Text() != "got-term" {
		t.Errorf("the command did not get SIGTERM: %q", sc.Text())
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("run exited with %v, want the command's 7", err)
	}
	jobs, _ := filepath.Glob(filepath.Join(tmp, "sifkernel-1234/users/1234/jobs/*"))
	refs, _ := filepath.Glob(filepath.Join(tmp, "sifkernel-1234/users/1234/refs/*/*"))
	if len(jobs)+len(refs) != 0 {
		t.Errorf("run left job files %v and refs %v (the copy itself stays for keep_warm)", jobs, refs)
	}
}

// TestSweep: a node crashed with two jobs; one still runs (per squeue).
// sweep removes only the other's job directory and refs.
func TestSweep(t *testing.T) {
	s := newSite(t)
	squeue := filepath.Join(s.base, "squeue")
	testkit.Must(t, os.WriteFile(squeue, []byte("#!/bin/sh\necho 4343\n"), 0o755))
	s.setConfig(t, "[slurm]\nsqueue = \""+squeue+"\"\n")
	for _, job := range []string{"4242", "4343"} {
		s.env["SLURM_JOB_ID"] = job
		if err := s.lc(t).Prolog(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Must(t, os.WriteFile(filepath.Join(s.cacheDir, "jobs", "not-a-job"), []byte("site file"), 0o644))
	r, err := s.lc(t).Sweep(context.Background(), SweepOptions{Node: "c001"})
	if err != nil {
		t.Fatalf("%v\n%s", err, s.log.String())
	}
	if len(r.JobDirs) != 1 || r.JobDirs[0] != "4242" {
		t.Errorf("sweep removed %v, want only 4242", r.JobDirs)
	}
	if _, err := os.Stat(s.jobDir("4242")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("4242's job dir is still there")
	}
	if !cache.PreparedPath(s.jobDir("4343")) {
		t.Error("sweep disturbed the running job 4343")
	}
	refs, _ := filepath.Glob(filepath.Join(s.cacheDir, "users/1234/refs/*/*"))
	if len(refs) != 1 || filepath.Base(refs[0]) != "4343" {
		t.Errorf("refs after sweep: %v, want only 4343's", refs)
	}
	if _, err := os.Stat(filepath.Join(s.cacheDir, "jobs", "not-a-job")); err != nil {
		t.Error("sweep removed something that is not a job's")
	}

	testkit.Must(t, os.WriteFile(squeue, []byte("#!/bin/sh\necho 'Unable to contact slurm controller' >&2; exit 1\n"), 0o755))
	if _, err := s.lc(t).Sweep(context.Background(), SweepOptions{}); err == nil || !cache.PreparedPath(s.jobDir("4343")) {
		t.Errorf("sweep without squeue = %v; it must remove nothing", err)
	}
	if _, err := s.lc(t).Sweep(context.Background(), SweepOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	// At boot no job runs: job directories and refs go; copies stay for
	// keep_warm (a crash leaves none half-made: see cache's temps).
	if m, _ := filepath.Glob(filepath.Join(s.cacheDir, "users/1234/refs/*/*")); len(m) != 0 || cache.PreparedPath(s.jobDir("4343")) {
		t.Errorf("sweep --all left refs %v or job 4343's directory", m)
	}
}
