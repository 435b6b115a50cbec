package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestJobFromCgroup(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"cgroup v2, an adopted ssh session", "0::/system.slice/slurmstepd.scope/job_4242/step_extern/user/task_special\n", "4242"},
		{"cgroup v1", "12:memory:/slurm/uid_1234/job_77/step_0\n11:cpuset:/slurm/uid_1234/job_77/step_0/task_0\n", "77"},
		{"cgroup v1, job directory itself", "4:freezer:/slurm/uid_1/job_5\n", "5"},
		{"a login session", "0::/user.slice/user-1234.slice/session-3.scope\n", ""},
		{"job_ not a whole component", "0::/system.slice/notjob_12/x\n", ""},
		{"no cgroups", "", ""},
		{"job_ not followed by a job id", "0::/x/job_12abc/step_0\n0::/x/job_../y\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JobFromCgroup(strings.NewReader(tt.file)).String(); got != tt.want {
				t.Errorf("JobFromCgroup = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEnvFindsTheSession: with none of the job's environment (an ssh
// session), sifkernel env finds the user's newest prepared job on the node;
// with SLURM_JOB_ID, that one; another user's job directory, though newer,
// is never taken.
func TestEnvFindsTheSession(t *testing.T) {
	s := newSite(t)
	base := time.Now().Add(-time.Hour)
	for i, job := range []string{"101", "102"} {
		s.env["SLURM_JOB_ID"] = job
		if err := s.lc(t).Prolog(context.Background()); err != nil {
			t.Fatal(err)
		}
		stamp(t, filepath.Join(s.jobDir(job), "node.json"), base.Add(time.Duration(i)*time.Minute))
	}
	// Job 103 belongs to someone else: a root-owned job directory, newest.
	testkit.Must(t, os.MkdirAll(filepath.Join(s.jobDir("103"), "jupyter"), 0o700))
	testkit.Must(t, os.WriteFile(filepath.Join(s.jobDir("103"), "node.json"), []byte("{}"), 0o600))
	stamp(t, filepath.Join(s.jobDir("103"), "node.json"), base.Add(2*time.Minute))
	s.env = map[string]string{} // an ssh session: no Slurm variables
	out, err := s.asAlice(t, nil, "env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "export SIFKERNEL_JOB_DIR='"+s.jobDir("102")+"'") || !strings.Contains(out, s.jobDir("102")+"/jupyter") {
		t.Errorf("env chose:\n%s\nwant the newest of alice's jobs, 102 (103, newer, is not hers)", out)
	}
	out, err = s.asAlice(t, []string{"SLURM_JOB_ID=101"}, "env", "--shell", "csh")
	if err != nil || !strings.Contains(out, "setenv SIFKERNEL_JOB_DIR '"+s.jobDir("101")+"'") {
		t.Errorf("env with SLURM_JOB_ID=101: %v\n%s", err, out)
	}
}

// TestSessionCgroupFirst: the job whose cgroup the session is in wins over
// a newer job of the same user. (In-process, as root, with root's own job
// directories standing for the user's: the rule is the same.)
func TestSessionCgroupFirst(t *testing.T) {
	s := newSite(t)
	lc := s.lc(t)
	base := time.Now().Add(-time.Hour)
	for i, job := range []string{"201", "202"} {
		testkit.Must(t, os.MkdirAll(filepath.Join(s.jobDir(job), "jupyter"), 0o700))
		testkit.Must(t, os.WriteFile(filepath.Join(s.jobDir(job), "node.json"), []byte("{}"), 0o600))
		stamp(t, filepath.Join(s.jobDir(job), "node.json"), base.Add(time.Duration(i)*time.Minute))
	}
	testkit.Must(t, os.Chmod(filepath.Join(s.cacheDir), 0o755))
	root := t.TempDir()
	testkit.Must(t, os.MkdirAll(filepath.Join(root, "proc", "self"), 0o755))
	lc.NodeRoot = root
	lc.LookupEnv = func(string) (string, bool) { return "", false }
	if got, ok := lc.FindSession(); !ok || got.Job.String() != "202" || len(got.Others) != 1 {
		t.Errorf("without a cgroup: %+v %v, want the newest, 202, and 201 named", got, ok)
	}
	testkit.Must(t, os.WriteFile(filepath.Join(root, "proc", "self", "cgroup"), []byte("0::/system.slice/slurmstepd.scope/job_201/step_extern\n"), 0o644))
	if got, ok := lc.FindSession(); !ok || got.Job.String() != "201" || !strings.Contains(got.How, "cgroup") {
		t.Errorf("in job 201's cgroup: %+v %v", got, ok)
	}
}

// TestEnvOnALoginNode: no cache root, no job: nothing printed, exit 0.
func TestEnvOnALoginNode(t *testing.T) {
	s := newSite(t)
	s.env = map[string]string{}
	out, err := s.asAlice(t, nil, "env", "--quiet")
	if err != nil || out != "" {
		t.Errorf("env on a login node: %v %q", err, out)
	}
}

// TestNodeIsSlurms: the job's node.json and overlays name the node as
// Slurm does (SLURMD_NODENAME), not the host, which several slurmd share
// on the test cluster.
func TestNodeIsSlurms(t *testing.T) {
	s := newSite(t)
	if err := s.lc(t).Prolog(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(s.jobDir("4242"))
	if err != nil || r.Node != "c001" || r.NodeFrom != "SLURMD_NODENAME" {
		t.Errorf("node.json says node %q from %q (%v), want c001 from SLURMD_NODENAME", r.Node, r.NodeFrom, err)
	}
}

// stamp gives a file the modification time t: the order of jobs is set,
// not waited for.
func stamp(tb testing.TB, path string, t time.Time) {
	tb.Helper()
	testkit.Must(tb, os.Chtimes(path, t, t))
}
