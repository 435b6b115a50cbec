//go:build cluster

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// marker is what client.py prints in a kernel that runs inside the test
// image under Apptainer: the image's marker file, and /.singularity.d found.
const marker = "sifkernel test image True"

// Scenario 1: a GPU job on rtx-dev. The Prolog stages the image on m2, the
// TaskProlog's JUPYTER_PATH reaches the job, jupyter_client starts the
// user's kernel by name from the staged image with --nv; the Epilog cleans up
// the job's files and keeps the copy for the user's next job.
func TestGPUJob(t *testing.T) {
	requireCluster(t)
	img := setupUser(t, "sktest1", "bert")
	since := apptainerOffset(t)
	id, _, r := kernelJob(t, "sktest1", "-p rtx-dev --gres=gpu:1", "/usr/bin/python3 ~/client.py bert")
	if strings.TrimSpace(r.Out) != marker {
		t.Errorf("the kernel printed %q, want the image's marker", r.Out)
	}
	staged := fmt.Sprintf("%s/users/%d/", nodeCache, uid(t, "sktest1"))
	if !strings.HasPrefix(r.JupyterPath, nodeCache+"/jobs/"+id+"/jupyter") {
		t.Errorf("JUPYTER_PATH in the job = %q", r.JupyterPath)
	}
	calls := apptainerCalls(t, since)
	if len(calls) != 1 || !calls[0].NV() || !strings.HasPrefix(calls[0].Image(), staged) || calls[0].UID != uid(t, "sktest1") {
		t.Errorf("Apptainer calls %+v: want one, as sktest1, with --nv and an image under %s", calls, staged)
	}
	if existsOn(t, "m2", nodeCache+"/jobs/"+id) || len(globOn(t, "m2", staged+"refs/*/"+id)) != 0 {
		t.Errorf("the Epilog left the job dir or refs of %s on m2", id)
	}
	if len(globOn(t, "m2", staged+"*.sif")) != 1 || len(globOn(t, "m2", staged+"refs/*/*")) != 0 {
		t.Error("the image is not kept, unused, after the last job (keep_warm: hours by default)")
	}
	if _, err := os.Stat(img); err != nil {
		t.Error("the source image is gone")
	}
}

// Scenario 2: the same kernel in a CPU job: no --nv, and no warnings.
func TestCPUJob(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	since := apptainerOffset(t)
	_, out, r := kernelJob(t, "sktest1", "-p normal -w m1", "/usr/bin/python3 ~/client.py bert")
	if strings.TrimSpace(r.Out) != marker || slices.Contains(r.Argv, "--nv") {
		t.Errorf("CPU job result %+v", r)
	}
	calls := apptainerCalls(t, since)
	if len(calls) != 1 || calls[0].NV() {
		t.Errorf("Apptainer calls %+v: want one without --nv", calls)
	}
	if strings.Contains(out, "nv files") {
		t.Errorf("the job's output has Apptainer's --nv warning:\n%s", out)
	}
}

// Scenario 3: two jobs of one user on one node share one copy; the first
// job's Epilog does not disturb the second, which still starts its kernel.
func TestConcurrentJobsOneCopy(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	mustAs(t, "sktest1", "rm -f ~/go-a ~/go-b")
	// Each job waits for the test's go-ahead (a file), not for a fixed time:
	// under load any fixed sleep is either too short or wasted.
	wait := func(flag string) string {
		return "for i in $(seq 1500); do [ -e ~/" + flag + " ] && break; sleep 0.2; done; "
	}
	cache := fmt.Sprintf("%s/users/%d/", nodeCache, uid(t, "sktest1"))
	before := len(globOn(t, "m1", cache+"*.sif")) // earlier scenarios' copies stay (keep_warm)
	a := sbatch(t, "sktest1", "-p normal -w m1", wait("go-a"))
	defer scancel(a)
	waitState(t, a, 2*time.Minute, "RUNNING")
	b := sbatch(t, "sktest1", "-p normal -w m1", wait("go-b")+"/usr/bin/python3 ~/client.py bert")
	defer scancel(b)
	waitState(t, b, 2*time.Minute, "RUNNING")
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+b+"/node.json") })
	if s := jobState(t, a); s != "RUNNING" {
		t.Fatalf("the first job is %s while the second runs", s)
	}
	if n := len(globOn(t, "m1", cache+"*.sif")) - before; n != 1 {
		t.Errorf("%d new copies in m1's cache with two jobs running, want 1", n)
	}
	mustAs(t, "sktest1", "touch ~/go-a")
	if s := waitDone(t, a); s != "COMPLETED" {
		t.Fatalf("job %s: %s", a, s)
	}
	mustAs(t, "sktest1", "touch ~/go-b")
	if s := waitDone(t, b); s != "COMPLETED" {
		t.Fatalf("job %s: %s\n%s", b, s, output(t, "sktest1", b))
	}
	if r := parseResult(t, output(t, "sktest1", b)); strings.TrimSpace(r.Out) != marker {
		t.Errorf("the second job's kernel printed %q", r.Out)
	}
}

// Scenario 4: neither user can read the other's cache or job dir.
func TestUsersAreIsolated(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	setupUser(t, "sktest2", "bert")
	a := sbatch(t, "sktest1", "-p normal -w m1", "sleep 600") // cancelled below
	waitState(t, a, time.Minute, "RUNNING")
	defer scancel(a)
	// What the probe must fail to read has to exist, or it tests nothing.
	for _, p := range []string{fmt.Sprintf("%s/users/%d", nodeCache, uid(t, "sktest1")), fmt.Sprintf("%s/jobs/%s/node.json", nodeCache, a)} {
		testkit.Eventually(t, 30*time.Second, 200*time.Millisecond, func() bool { return existsOn(t, "m1", p) },
			func() string {
				return fmt.Sprintf("%s does not exist on m1 while job %s runs\n%s", p, a, sifkernelLog(t))
			})
	}
	probe := fmt.Sprintf("ls %[1]s/users/%[2]d >/dev/null 2>&1 && echo CACHE-READABLE; cat %[1]s/jobs/%[3]s/node.json >/dev/null 2>&1 && echo JOBDIR-READABLE; echo probed",
		nodeCache, uid(t, "sktest1"), a)
	b := sbatch(t, "sktest2", "-p normal -w m1", probe)
	waitDone(t, b)
	out := output(t, "sktest2", b)
	if !strings.Contains(out, "probed") || strings.Contains(out, "READABLE") {
		t.Errorf("sktest2 could read sktest1's files:\n%s", out)
	}
}

// Scenario 5: bad inputs never drain the node; the log names each reason.
func TestBadInputsDoNotDrain(t *testing.T) {
	requireCluster(t)
	u := "sktest2"
	setupUser(t, u, "bert")
	secret := filepath.Join(skc, "secret.sif")
	if out, err := root(filepath.Join(skc, "bin/mkimage"), secret); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	testkit.Must(t, os.Chmod(secret, 0o600))
	script := `set -e
` + mkimage + `
mkdir -p k && mk k/gone.sif && sifkernel kernel add missing --image ~/k/gone.sif --force >/dev/null && rm k/gone.sif
d=~/.local/share/jupyter/kernels
mkdir -p $d/invalid $d/curly
echo '{"argv": ["apptainer", "exec"' >$d/invalid/kernel.json
printf '{\n “argv”: [“apptainer”, “exec”, “x.sif”, “python3”, “{connection_file}”]\n}\n' >$d/curly/kernel.json
ln -sf ` + secret + ` k/secret.sif
mkdir -p $d/secret && sed "s#$HOME/images/bert.sif#$HOME/k/secret.sif#g" $d/bert/kernel.json >$d/secret/kernel.json`
	if out, err := as(t, u, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer mustAs(t, u, "rm -rf ~/.local/share/jupyter/kernels/{missing,invalid,curly,secret}")
	id := sbatch(t, u, "-p rtx-dev --gres=gpu:1", "echo ran")
	if s := waitDone(t, id); s != "COMPLETED" || !strings.Contains(output(t, u, id), "ran") {
		t.Fatalf("job %s: %s\n%s", id, s, output(t, u, id))
	}
	if st := nodeState(t, "m2"); st != "idle" {
		t.Errorf("m2 is %q after bad inputs, want idle", st)
	}
	log := jobLog(t, id)
	for _, want := range []string{`kernel \"missing\" uses`, `kernel \"invalid\" skipped`, `kernel \"curly\" skipped`, `kernel \"secret\" uses`, "permission denied", `kernel \"bert\" uses the staged`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log of job %s lacks %q:\n%s", id, want, log)
		}
	}
}

// jobLog is what sifkernel logged for one job.
func jobLog(t *testing.T, id string) string {
	var lines []string
	for _, l := range strings.Split(sifkernelLog(t), "\n") {
		if strings.Contains(l, "job="+id+" ") || strings.HasSuffix(l, "job="+id) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Scenario 7: scancel in the middle of a job: the Epilog cleans up.
func TestScancelCleansUp(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	id := sbatch(t, "sktest1", "-p normal -w m1", "sleep 300")
	waitState(t, id, time.Minute, "RUNNING")
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+id+"/node.json") })
	scancel(id)
	waitDone(t, id)
	if existsOn(t, "m1", nodeCache+"/jobs/"+id) {
		t.Error("the job dir is still there after scancel")
	}
	if n := len(globOn(t, "m1", fmt.Sprintf("%s/users/%d/refs/*/%s", nodeCache, uid(t, "sktest1"), id))); n != 0 {
		t.Errorf("%d refs left after scancel", n)
	}
}

// Scenario 8: a node crashes (no Epilog); sweep removes the dead job's
// leftovers and nothing of a job that still runs there.
func TestSweepAfterCrash(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	dead := sbatch(t, "sktest1", "-p normal -w m1 --no-requeue", "sleep 600")
	waitState(t, dead, time.Minute, "RUNNING")
	// The crash: slurmd and the job's processes die at once.
	killSlurmd(t, "m1")
	// pkill exits 1 when nothing matched: what a crash left may already be gone.
	_, _ = onNode(t, "m1", "pkill", "-9", "-f", "slurmstepd: \\["+dead)
	_, _ = onNode(t, "m1", "pkill", "-9", "-u", "sktest1")
	if out, err := root("scontrol", "update", "nodename=m1", "state=down", "reason=crash-test"); err != nil {
		t.Fatalf("scontrol: %v\n%s", err, out)
	}
	waitState(t, dead, time.Minute, "NODE_FAIL", "FAILED", "CANCELLED")
	if !existsOn(t, "m1", nodeCache+"/jobs/"+dead) {
		t.Fatal("the crash removed the job dir; nothing to sweep")
	}
	startSlurmd(t, "m1")
	// ReturnToService=2 may have returned the node on slurmd's first
	// registration already; scontrol then refuses the resume, which is fine.
	if out, err := root("scontrol", "update", "nodename=m1", "state=resume"); err != nil && !strings.Contains(out, "Invalid node state") {
		t.Fatalf("scontrol: %v\n%s", err, out)
	}
	alive := sbatch(t, "sktest1", "-p normal -w m1", "sleep 600") // cancelled below
	waitState(t, alive, 2*time.Minute, "RUNNING")
	defer scancel(alive)
	// RUNNING comes before the Prolog is done; under load, well before.
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+alive+"/node.json") })
	out, err := onNode(t, "m1", sifkernelBin, "sweep", "--node", "m1")
	if err != nil {
		t.Fatalf("sweep: %v\n%s", err, out)
	}
	if existsOn(t, "m1", nodeCache+"/jobs/"+dead) {
		t.Errorf("sweep left the dead job's dir (%s)", out)
	}
	if !existsOn(t, "m1", nodeCache+"/jobs/"+alive+"/node.json") {
		t.Error("sweep removed the running job's dir")
	}
	refs := globOn(t, "m1", fmt.Sprintf("%s/users/%d/refs/*/*", nodeCache, uid(t, "sktest1")))
	if len(refs) != 1 || filepath.Base(refs[0]) != alive {
		t.Errorf("refs after sweep: %v, want only %s's", refs, alive)
	}
}

// Scenario 9: a site without root hooks: `sifkernel run` in the job script
// gets the kernel working and leaves nothing behind.
func TestWithoutHooks(t *testing.T) {
	requireCluster(t)
	// Restored however this ends, even if turning them off failed half-way:
	// the scenarios after this one need the hooks.
	defer setHooks(t, true)
	setHooks(t, false)
	setupUser(t, "sktest1", "bert")
	since := apptainerOffset(t)
	id, _, r := kernelJob(t, "sktest1", "-p normal -w m1", "sifkernel run -- /usr/bin/python3 ~/client.py bert")
	if strings.TrimSpace(r.Out) != marker {
		t.Errorf("result %+v", r)
	}
	// With no Prolog, run stages as the user: into users/<uid> if an earlier
	// Prolog made it on this node, else into /tmp/sifkernel-<uid>.
	u := uid(t, "sktest1")
	caches := []string{fmt.Sprintf("%s/users/%d", nodeCache, u), fmt.Sprintf("/tmp/sifkernel-%d/users/%d", u, u)}
	calls := apptainerCalls(t, since)
	if len(calls) != 1 || !(strings.HasPrefix(calls[0].Image(), caches[0]) || strings.HasPrefix(calls[0].Image(), caches[1])) {
		t.Errorf("calls %+v: want the image staged in the user's cache", calls)
	}
	for _, c := range caches {
		// The copy stays for the user's next job (keep_warm), used by none.
		if left := globOn(t, "m1", c+"/jobs/* "+c+"/refs/*/*"); len(left) != 0 {
			t.Errorf("sifkernel run left %v", left)
		}
	}
	if existsOn(t, "m1", nodeCache+"/jobs/"+id) {
		t.Error("a job dir was made by a hook that should be off")
	}
}

// reconfigs counts the reconfigures a slurmd log records: Slurm 22.05
// logs "Node reconfigured"; 24.11 re-executes slurmd on a reconfigure and
// logs "Caught SIGHUP. Triggering reconfigure." instead.
func reconfigs(log string) int {
	return strings.Count(log, "Node reconfigured") + strings.Count(log, "Triggering reconfigure")
}

func setHooks(t *testing.T, on bool) {
	t.Helper()
	v := map[bool]string{true: "1", false: "0"}[on]
	// slurmd applies a reconfigure after scontrol returns: wait until each
	// node's log says it did (reconfigs), rather than for a fixed time.
	reconfigured := func() int {
		n := 0
		for _, node := range []string{"m1", "m2"} {
			b := testkit.ReadOptional(t, filepath.Join(skc, "log", "slurmd-"+node+".log"))
			n += reconfigs(string(b))
		}
		return n
	}
	if vms {
		// Each host's own slurm.conf, as a site edits it; slurmd logs on its node.
		reconfigured = func() int {
			n := 0
			for _, node := range []string{"m1", "m2"} {
				out, _ := onNode(t, node, "cat", "/var/log/slurm/slurmd.log")
				n += reconfigs(out)
			}
			return n
		}
	}
	before := reconfigured()
	script := filepath.Dir(mustWd(t)) + "/up && scontrol reconfigure"
	if vms {
		edit := `sed -i -E 's/^#?((Prolog|Epilog|TaskProlog)=.*)/\1/' /etc/slurm/slurm.conf`
		if !on {
			edit = `sed -i -E 's/^((Prolog|Epilog|TaskProlog)=.*)/#\1/' /etc/slurm/slurm.conf`
		}
		script = edit + " && for n in m1 m2; do ssh -o BatchMode=yes $n \"" + edit + "\" || exit 1; done && scontrol reconfigure"
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "SIFKERNEL_CLUSTER_HOOKS="+v, "SLURM_CONF="+slurmConf())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hooks %v: %v\n%s", on, err, out)
	}
	waitFor(t, func() bool { return reconfigured() >= before+2 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, scaled(time.Minute), 100*time.Millisecond, cond, func() string { return "slurmd did not reconfigure" })
}

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// Scenario 10: sifkernel idev with an idev stand-in (salloc + srun to a
// shell): the shell on the compute node has the job's JUPYTER_PATH.
func TestIdev(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	out, err := as(t, "sktest1", `IDEV_COMMAND='echo "JP=$JUPYTER_PATH AUTO=$SIFKERNEL_AUTO"' sifkernel idev -p normal -w m1 -t 5`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "JP="+nodeCache+"/jobs/") || !strings.Contains(out, "AUTO=1") {
		t.Errorf("the idev shell saw %q", out)
	}
	mustAs(t, "sktest1", "mkdir -p ~/.local/share/jupyter/kernels/broken && echo '{' >~/.local/share/jupyter/kernels/broken/kernel.json")
	defer mustAs(t, "sktest1", "rm -rf ~/.local/share/jupyter/kernels/broken")
	out, err = as(t, "sktest1", `IDEV_COMMAND=true sifkernel idev -p normal -t 5`)
	if err == nil || !strings.Contains(out, "broken") {
		t.Errorf("idev with a broken kernel queued anyway: %v\n%s", err, out)
	}
}

// Scenario 6: a two-node job. The Prolog runs on both nodes; stage --bcast
// fans an image out with sbcast and both node caches hold it.
func TestTwoNodeBcast(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	if out, err := as(t, "sktest1", mkimage+"mk ~/images/extra.sif"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	mustAs(t, "sktest1", "rm -f ~/go-bcast")
	id := sbatch(t, "sktest1", "-p normal -N 2", "sifkernel stage --bcast --json ~/images/extra.sif; echo staged-$?; "+
		"for i in $(seq 1500); do [ -e ~/go-bcast ] && break; sleep 0.2; done")
	defer scancel(id)
	waitState(t, id, time.Minute, "RUNNING")
	waitFor(t, func() bool { return strings.Contains(output(t, "sktest1", id), "staged-") })
	out := output(t, "sktest1", id)
	if !strings.Contains(out, "staged-0") || strings.Count(out, `"staged": true`) != 2 {
		t.Fatalf("stage --bcast:\n%s", out)
	}
	cache := fmt.Sprintf("%s/users/%d/", nodeCache, uid(t, "sktest1"))
	for _, n := range []string{"m1", "m2"} {
		if !existsOn(t, n, nodeCache+"/jobs/"+id+"/node.json") {
			t.Errorf("no Prolog ran on %s", n)
		}
		if refs := globOn(t, n, cache+"refs/extra-*/"+id); len(refs) != 1 {
			t.Errorf("%s's cache does not hold extra.sif for job %s", n, id)
		}
		if left := globOn(t, n, nodeCache+"/jobs/"+id+"/bcast-*"); len(left) != 0 {
			t.Errorf("sbcast copies left on %s: %v", n, left)
		}
	}
	mustAs(t, "sktest1", "touch ~/go-bcast")
	waitDone(t, id)
}

// idevSSH runs the ssh-style idev stand-in (testcluster/bin/idev-ssh) for u
// and returns what the command printed on the node.
func idevSSH(t *testing.T, u string, sbatchArgs []string, command string) string {
	t.Helper()
	args := append(append([]string{u}, sbatchArgs...), "--", command)
	out, err := root(filepath.Join(filepath.Dir(mustWd(t)), "bin", "idev-ssh"), args...)
	if err != nil {
		t.Fatalf("idev-ssh: %v\n%s", err, out)
	}
	return out
}

// Scenario 11: an ssh-style idev (sbatch a sleep job, then log in to its
// node with a clean environment, as ssh with pam_slurm_adopt does): no
// TaskProlog ran and no Slurm variable is set, yet the profile snippet's
// `sifkernel env` gives the shell the job's kernels: jupyter kernelspec
// lists the job's copy, and jupyter_client starts it inside the image from
// the staged copy.
func TestIdevOverSSH(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	since := apptainerOffset(t)
	out := idevSSH(t, "sktest1", []string{"-p", "normal", "-w", "m1"},
		`echo "JOB=${SLURM_JOB_ID:-none}"; jupyter kernelspec list; /usr/bin/python3 ~/client.py bert`)
	_, job, _ := strings.Cut(out, "idev-ssh: job ")
	job, _, _ = strings.Cut(job, " ")
	// pam_slurm_adopt sets SLURM_JOB_ID in the session and nothing else;
	// the one-machine stand-in sets nothing.
	if want := map[bool]string{true: "JOB=" + job, false: "JOB=none"}[vms]; !strings.Contains(out, want+"\n") {
		t.Errorf("the login shell's SLURM_JOB_ID: want %s:\n%s", want, out)
	}
	jobKernels := nodeCache + "/jobs/" + job + "/jupyter"
	if !strings.Contains(out, jobKernels+"/kernels/bert") {
		t.Errorf("jupyter kernelspec list does not show the job's bert:\n%s", out)
	}
	r := parseResult(t, out)
	if strings.TrimSpace(r.Out) != marker || !strings.HasPrefix(r.JupyterPath, jobKernels) {
		t.Errorf("the kernel: %+v", r)
	}
	calls := apptainerCalls(t, since)
	staged := fmt.Sprintf("%s/users/%d/", nodeCache, uid(t, "sktest1"))
	if len(calls) != 1 || !strings.HasPrefix(calls[0].Image(), staged) {
		t.Errorf("Apptainer calls %+v: want one, of the image staged under %s", calls, staged)
	}
}

// Scenario 12: two jobs of one user on one node, and a login by ssh. On
// the one-machine cluster (processes tracked without cgroups) nothing tells
// which job the session belongs to: the newest is taken, and the shell is
// told which and what else runs. On the VM cluster, pam_slurm_adopt puts
// the ssh session into one job's cgroup: that job is taken, whichever it is.
func TestIdevOverSSHTwoJobs(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	first := sbatch(t, "sktest1", "-p normal -w m1", "sleep 120")
	defer scancel(first)
	waitState(t, first, time.Minute, "RUNNING")
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+first+"/node.json") })
	out := idevSSH(t, "sktest1", []string{"-p", "normal", "-w", "m1"}, `echo "SJD=$SIFKERNEL_JOB_DIR"; echo "CG=$(cat /proc/self/cgroup)"`)
	_, second, _ := strings.Cut(out, "idev-ssh: job ")
	second, _, _ = strings.Cut(second, " ")
	if vms {
		_, cg, _ := strings.Cut(out, "CG=")
		m := regexp.MustCompile(`job_([0-9]+)`).FindStringSubmatch(cg)
		if m == nil {
			t.Fatalf("pam_slurm_adopt put the session in no job's cgroup:\n%s", out)
		}
		if m[1] != first && m[1] != second {
			t.Fatalf("the session is in job %s's cgroup, neither %s nor %s", m[1], first, second)
		}
		if !strings.Contains(out, "SJD="+nodeCache+"/jobs/"+m[1]+"\n") {
			t.Errorf("the session is in job %s's cgroup but did not get that job's kernels:\n%s", m[1], out)
		}
		return
	}
	if !strings.Contains(out, "SJD="+nodeCache+"/jobs/"+second) {
		t.Errorf("the session did not get the newest job, %s:\n%s", second, out)
	}
	if !strings.Contains(out, "using job "+second) || !strings.Contains(out, "also here: "+first) {
		t.Errorf("the choice was not stated:\n%s", out)
	}
}

// TestHooksAreTheOnesUnderTest: slurmd runs the sifkernel this run is
// about, from the slurm.conf lines the project ships: with
// SIFKERNEL_INSTALLED=1, the packaged /usr/bin/sifkernel that dpkg owns.
func TestHooksAreTheOnesUnderTest(t *testing.T) {
	requireCluster(t)
	out, err := root("scontrol", "show", "config")
	if err != nil {
		t.Fatalf("scontrol show config: %v\n%s", err, out)
	}
	for _, key := range []string{"Prolog", "Epilog", "TaskProlog"} {
		want := fmt.Sprintf("%s = %s", key, sifkernelBin)
		if !regexp.MustCompile(`(?m)^` + key + `\s+= ` + regexp.QuoteMeta(sifkernelBin) + `$`).MatchString(out) {
			t.Errorf("slurm.conf lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^PrologFlags\s+= .*Alloc`).MatchString(out) {
		t.Error("PrologFlags lacks Alloc (the shipped snippet sets it)")
	}
	if os.Getenv("SIFKERNEL_INSTALLED") == "1" {
		if out, err := root("dpkg", "-S", sifkernelBin); err != nil || !strings.HasPrefix(out, "sifkernel: ") {
			t.Errorf("%s is not the package's: %v %s", sifkernelBin, err, out)
		}
		if out, err := root("dpkg-query", "-W", "-f", "${Conffiles}", "sifkernel"); err != nil || !strings.Contains(out, "/etc/sifkernel/config.toml") {
			t.Errorf("/etc/sifkernel/config.toml is not a conffile of the package: %v %s", err, out)
		}
	}
}

// TestMetrics: after a job ran, `sifkernel metrics` as root on the node
// reports, in a form Prometheus' own parser reads, the Prolog and Epilog
// runs the hooks counted and the user's image in the node cache.
func TestMetrics(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	a := sbatch(t, "sktest1", "-p normal -w m1", "sleep 600") // cancelled below
	defer scancel(a)
	waitState(t, a, time.Minute, "RUNNING")
	waitFor(t, func() bool { return existsOn(t, "m1", nodeCache+"/jobs/"+a+"/node.json") })
	out, err := onNode(t, "m1", sifkernelBin, "metrics")
	if err != nil {
		t.Fatalf("sifkernel metrics: %v\n%s", err, out)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("Prometheus cannot parse it: %v\n%s", err, out)
	}
	sample := func(name, label, value string) float64 {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
		t.Errorf("no %s{%s=%q} in:\n%s", name, label, value, out)
		return 0
	}
	if n := sample("sifkernel_hook_runs_total", "hook", "prolog"); n < 1 {
		t.Errorf("prolog runs = %v", n)
	}
	if n := sample("sifkernel_cache_entries", "user", "sktest1"); n < 1 {
		t.Errorf("sktest1's cached images = %v", n)
	}
	if fams["sifkernel_cache_up"].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("the cache is not up:\n%s", out)
	}
}
