//go:build cluster && !vmcluster

package e2e

import (
	"strings"
	"testing"
)

// Scenario 19: a tcsh user logs in to the node of her job the ssh-style
// idev way (testcluster/bin/idev-ssh: a login shell, SLURM_JOB_ID and the
// TaskProlog's exports absent), and the csh snippet, which Debian's tcsh
// runs from /etc/csh/login.d (where the package links it; RHEL's runs
// /etc/profile.d/*.csh itself), gives her shell the job's kernels. The
// one-machine cluster only: the VMs' box has no tcsh.
func TestIdevOverSSHTcsh(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest2", "bert")
	if out, err := root("usermod", "-s", "/usr/bin/tcsh", "sktest2"); err != nil {
		t.Fatalf("usermod: %v\n%s", err, out)
	}
	defer func() { _, _ = root("usermod", "-s", "/bin/bash", "sktest2") }()
	out := idevSSH(t, "sktest2", []string{"-p", "normal", "-w", "m1"}, `echo "SHELL=$shell JP=$JUPYTER_PATH"; jupyter kernelspec list`)
	_, job, _ := strings.Cut(out, "idev-ssh: job ")
	job, _, _ = strings.Cut(job, " ")
	jobKernels := nodeCache + "/jobs/" + job + "/jupyter"
	if !strings.Contains(out, "SHELL=/usr/bin/tcsh") {
		t.Fatalf("the login shell is not tcsh:\n%s", out)
	}
	if !strings.Contains(out, "JP="+jobKernels) || !strings.Contains(out, jobKernels+"/kernels/bert") {
		t.Errorf("the tcsh login does not have the job's kernels (%s):\n%s", jobKernels, out)
	}
}
