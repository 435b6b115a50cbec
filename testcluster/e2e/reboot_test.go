//go:build cluster && vmcluster

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// Scenario 16 (the VM cluster only: a node must really boot): a compute
// node is reset under a running job (systemctl reboot --force --force, as
// a crash or a power cycle). Nothing of the job survives on its
// disk: at boot, before slurmd starts, the package's sifkernel-sweep-boot
// unit removes every job's directory and refs (the cache is on a disk that
// keeps its files across boots, /var/tmp, so nothing else would); the node
// comes back to idle, and the next job there gets its kernels.
func TestRebootMidJob(t *testing.T) {
	requireCluster(t)
	if !vms {
		t.Fatal("the reboot test needs the VM cluster (SIFKERNEL_CLUSTER_SSH=1)")
	}
	setupUser(t, "sktest1", "bert")
	id := sbatch(t, "sktest1", "-p normal -w m1 --no-requeue", "sleep 900")
	waitState(t, id, 2*time.Minute, "RUNNING")
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+id+"/node.json") })
	refs := fmt.Sprintf("%s/users/%d/refs/*/%s", nodeCache, uid(t, "sktest1"), id)
	if len(globOn(t, "m1", refs)) == 0 {
		t.Fatal("the Prolog left no ref: nothing for the reboot to clean")
	}
	// A reset, as a crash or a power cycle gives (a graceful reboot with a job
	// running waits 3 minutes on slurmstepd's scope, then on NFS, here).
	_, _ = onNode(t, "m1", "systemctl", "reboot", "--force", "--force") // ssh returns an error as the link goes
	waitState(t, id, 5*time.Minute, "NODE_FAIL", "FAILED", "CANCELLED", "COMPLETED")
	deadline := time.Now().Add(8 * time.Minute)
	for {
		out, err := onNode(t, "m1", "systemctl", "is-active", "slurmd")
		if err == nil && strings.TrimSpace(out) == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m1 did not come back: %v %s", err, out)
		}
		time.Sleep(5 * time.Second)
	}
	out, _ := onNode(t, "m1", "journalctl", "-b", "-u", "sifkernel-sweep-boot", "--no-pager", "-o", "cat")
	if !strings.Contains(out, "Finished") && !strings.Contains(out, "Deactivated successfully") {
		t.Errorf("the boot sweep did not run this boot:\n%s", out)
	}
	if order, _ := onNode(t, "m1", "systemctl", "show", "-p", "Before", "sifkernel-sweep-boot"); !strings.Contains(order, "slurmd.service") {
		t.Errorf("the boot sweep is not ordered before slurmd: %s", order)
	}
	if existsOn(t, "m1", nodeCache+"/jobs/"+id) {
		t.Error("the job's directory survived the reboot")
	}
	if left := globOn(t, "m1", refs); len(left) != 0 {
		t.Errorf("refs survived the reboot: %v", left)
	}
	if !existsOn(t, "m1", "/home/sktest1") {
		t.Error("/home is not mounted from ctl after the reboot")
	}
	testkit.Eventually(t, 3*time.Minute, 3*time.Second, func() bool { return nodeState(t, "m1") == "idle" },
		func() string { return "m1 is " + nodeState(t, "m1") + ", not idle, after the reboot" })
	_, _, r := kernelJob(t, "sktest1", "-p normal -w m1", "/usr/bin/python3 ~/client.py bert")
	if strings.TrimSpace(r.Out) != marker {
		t.Errorf("the kernel after the reboot: %+v", r)
	}
}
