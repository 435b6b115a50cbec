//go:build cluster

// Package e2e runs sifkernel inside the real Slurm of testcluster/up: jobs
// submitted as non-root test users, hooks run by slurmd, kernels started by
// the real jupyter_client. Run with `make test-cluster` (root).
package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

var skc = envOr("SIFKERNEL_CLUSTER_DIR", "/var/tmp/sifkernel-cluster")

// The sifkernel the cluster runs and its cache.dir on the nodes, as
// testcluster/lib.sh sets them: a build from source in the cluster's bin/,
// or with SIFKERNEL_INSTALLED=1 the installed package.
var (
	sifkernelBin = envOr("SIFKERNEL_BIN", filepath.Join(skc, "bin/sifkernel"))
	nodeCache    = envOr("NODE_CACHE", "/var/tmp/sifkernel-node-cache")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// slurmConf is the cluster's slurm.conf: $SLURM_CONF (the Vagrant cluster
// uses /etc/slurm/slurm.conf), else the one testcluster/up wrote.
func slurmConf() string { return envOr("SLURM_CONF", filepath.Join(skc, "etc/slurm.conf")) }

func slurmEnv() []string {
	return []string{"SLURM_CONF=" + slurmConf(), "PATH=" + filepath.Join(skc, "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
		// testcluster's scripts (idev-ssh) find the installed package's paths with it.
		"SIFKERNEL_INSTALLED=" + os.Getenv("SIFKERNEL_INSTALLED"), "SIFKERNEL_CLUSTER_SSH=" + os.Getenv("SIFKERNEL_CLUSTER_SSH"), "NODE_CACHE=" + nodeCache,
		// Jobs inherit it (sbatch exports the environment): kernels under
		// software emulation, just after a boot, take longer than 60 s.
		"SIFKERNEL_KERNEL_TIMEOUT=" + os.Getenv("SIFKERNEL_KERNEL_TIMEOUT")}
}

// requireCluster fails (skips outside CI) when testcluster/up has not run.
func requireCluster(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "the cluster tests run as root (they act for the test users)")
	}
	if out, err := root("scontrol", "ping"); err != nil || !strings.Contains(out, "UP") {
		testkit.Skip(t, "no test cluster: run testcluster/up first ("+strings.TrimSpace(out)+")")
	}
}

// root runs a command as root with the cluster's environment.
func root(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = slurmEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// as runs a bash script as a test user, in their home, with a login-like environment.
func as(t *testing.T, u, script string, env ...string) (string, error) {
	t.Helper()
	args := append([]string{"-u", u, "--", "env", "-i", "HOME=" + home(t, u), "USER=" + u}, slurmEnv()...)
	args = append(append(args, env...), "bash", "-c", "cd ~ && "+script)
	cmd := exec.Command("runuser", args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustAs runs a setup or clean-up script as a test user and fails the test
// if it fails.
func mustAs(t *testing.T, u, script string) {
	t.Helper()
	if out, err := as(t, u, script); err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u, script, err, out)
	}
}

// scancel cancels a job when a test is done with it; it may have ended
// already, which scancel reports as an error, so none is taken.
func scancel(id string) { _, _ = root("scancel", id) }

func lookup(t *testing.T, u string) *user.User {
	t.Helper()
	usr, err := user.Lookup(u)
	if err != nil {
		t.Fatal(err)
	}
	return usr
}

func home(t *testing.T, u string) string { return lookup(t, u).HomeDir }

func uid(t *testing.T, u string) int {
	n, _ := strconv.Atoi(lookup(t, u).Uid)
	return n
}

// mkimage is a shell snippet that builds a small real SIF at $1, for the
// images nothing runs from (missing, secret, broadcast ones): a root
// filesystem tree, mksquashfs, then mkimage (github.com/apptainer/sif/v2).
const mkimage = `mk() { t=$(mktemp -d) && mkdir -p $t/etc $t/root $t/home $t/tmp $t/usr $t/proc $t/dev $t/sys $t/run &&
  : >$t/etc/passwd && : >$t/etc/group && echo 'sifkernel example image' >$t/sifkernel-marker &&
  mksquashfs $t $t.sqfs -noappend -all-root -quiet >/dev/null && mkimage -rootfs $t.sqfs "$1"; rc=$?; rm -rf $t $t.sqfs; return $rc; }; `

// setupUser gives a test user the Python test image (testcluster/image/build:
// Debian's python3-ipykernel, run by the real Apptainer) and a kernel made
// by kernel add.
func setupUser(t *testing.T, u, name string) string {
	t.Helper()
	img := filepath.Join(home(t, u), "images", name+".sif")
	// A clean slate: kernels another run left (the soak's) must not be staged too.
	out, err := as(t, u, fmt.Sprintf("rm -rf ~/.local/share/jupyter/kernels && mkdir -p images && cp %s %s && sifkernel kernel add %s --image %s --force && cp %s ~/client.py",
		filepath.Join(skc, "images/python.sif"), img, name, img, filepath.Join(skc, "client.py")))
	if err != nil {
		t.Fatalf("setting up %s: %v\n%s", u, err, out)
	}
	return img
}

// sbatch submits a job script as u and returns its id.
func sbatch(t *testing.T, u, opts, script string) string {
	t.Helper()
	out, err := as(t, u, fmt.Sprintf("cat >job.sh <<'SCRIPT'\n#!/bin/bash\n%s\nSCRIPT\nsbatch --parsable -o out-%%j.txt -e out-%%j.txt %s job.sh", script, opts))
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	if _, err := strconv.Atoi(id); err != nil {
		t.Fatalf("sbatch printed %q", out)
	}
	return id
}

// jobState reads a job's state with scontrol.
func jobState(t *testing.T, id string) string {
	out, _ := root("scontrol", "show", "job", "-o", id)
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "JobState="); ok {
			return v
		}
	}
	return "UNKNOWN"
}

// waitState polls until the job is in one of states.
func waitState(t *testing.T, id string, timeout time.Duration, states ...string) string {
	t.Helper()
	timeout = scaled(timeout)
	deadline := time.Now().Add(timeout)
	for {
		s := jobState(t, id)
		for _, w := range states {
			if s == w {
				return s
			}
		}
		if time.Now().After(deadline) {
			out, _ := root("scontrol", "show", "job", id)
			t.Fatalf("job %s is %s after %s, want %v\n%s", id, s, timeout, states, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitDone waits for a job to end and its Epilog to finish on every node.
func waitDone(t *testing.T, id string) string {
	t.Helper()
	s := waitState(t, id, 3*time.Minute, "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
	testkit.Eventually(t, scaled(time.Minute), 200*time.Millisecond, func() bool {
		out, _ := root("sinfo", "-h", "-N", "-o", "%N %T")
		return !strings.Contains(out, "completing") && !strings.Contains(out, "comp")
	}, func() string { return "nodes still completing job " + id })
	return s
}

func output(t *testing.T, u, id string) string {
	t.Helper()
	b := testkit.ReadOptional(t, filepath.Join(home(t, u), "out-"+id+".txt"))
	return string(b)
}

// result is what client.py reports after running code in a kernel.
type result struct {
	Out         string   `json:"out"`
	Argv        []string `json:"argv"`
	JupyterPath string   `json:"jupyter_path"`
}

func parseResult(t *testing.T, out string) result {
	t.Helper()
	var r result
	_, line, ok := strings.Cut(out, "RESULT ")
	if !ok {
		t.Fatalf("the job's client printed no result:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("result %q: %v", line, err)
	}
	return r
}

// timeScale stretches every wait: SIFKERNEL_TEST_TIME_SCALE, 1 by default;
// the VM cluster under software emulation sets 3 (testcluster/vm/run-tests).
var timeScale = func() float64 {
	f, err := strconv.ParseFloat(os.Getenv("SIFKERNEL_TEST_TIME_SCALE"), 64)
	if err != nil || f < 1 {
		return 1
	}
	return f
}()

func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * timeScale) }

// vms says the tests run on the VM cluster: nodes are hosts, reached by ssh.
var vms = os.Getenv("SIFKERNEL_CLUSTER_SSH") == "1"

// onNode runs a command on a node, seeing its node-local disk: in its mount
// namespace on the one-machine cluster, by ssh on the Vagrant cluster.
func onNode(t *testing.T, node string, args ...string) (string, error) {
	t.Helper()
	if vms {
		// ssh hands the remote shell one string: quote each argument.
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = shellQuote(a)
		}
		return root("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
			node, "--", strings.Join(quoted, " "))
	}
	pid, err := os.ReadFile(filepath.Join(skc, "run", "node-"+node+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	return root("nsenter", append([]string{"--mount", "--target", strings.TrimSpace(string(pid)), "--"}, args...)...)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

func existsOn(t *testing.T, node, path string) bool {
	_, err := onNode(t, node, "test", "-e", path)
	return err == nil
}

func globOn(t *testing.T, node, pattern string) []string {
	out, _ := onNode(t, node, "sh", "-c", "ls -d "+pattern+" 2>/dev/null")
	return strings.Fields(out)
}

// apptainerCall is one call the logging front of the real Apptainer saw
// (testcluster/bin/apptainer-log): who ran it and the argv it got.
type apptainerCall struct {
	UID  int
	Argv []string
	cmd  *apptainer.Command // nil if the argv does not parse
}

// Image is the image the call ran.
func (c apptainerCall) Image() string {
	if c.cmd == nil {
		return ""
	}
	return c.cmd.Image
}

// NV says whether the call asked for NVIDIA GPUs.
func (c apptainerCall) NV() bool { return c.cmd != nil && c.cmd.Has("--nv") }

func apptainerLog() string { return filepath.Join(skc, "log/apptainer.log") }

func apptainerOffset(t *testing.T) int64 {
	st, err := os.Stat(apptainerLog())
	if err != nil {
		return 0
	}
	return st.Size()
}

// apptainerCalls reads the calls logged since offset since.
func apptainerCalls(t *testing.T, since int64) []apptainerCall {
	t.Helper()
	f, err := os.Open(apptainerLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(since, 0); err != nil {
		t.Fatal(err)
	}
	var calls []apptainerCall
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		uidText, enc, _ := strings.Cut(sc.Text(), " ")
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatalf("apptainer log line %q: %v", sc.Text(), err)
		}
		c := apptainerCall{Argv: append([]string{"apptainer"}, strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")...)}
		c.UID, _ = strconv.Atoi(uidText)
		c.cmd, _ = apptainer.Parse(c.Argv)
		calls = append(calls, c)
	}
	return calls
}

func sifkernelLog(t *testing.T) string {
	b := testkit.ReadOptional(t, filepath.Join(skc, "log/sifkernel.log"))
	return string(b)
}

func nodeState(t *testing.T, node string) string {
	out, _ := root("sinfo", "-h", "-N", "-n", node, "-o", "%T")
	return strings.TrimSpace(strings.Split(out, "\n")[0])
}

// killSlurmd kills a node's slurmd with SIGKILL, as a crash would.
func killSlurmd(t *testing.T, node string) {
	t.Helper()
	if vms {
		if out, err := onNode(t, node, "pkill", "-9", "-x", "slurmd"); err != nil {
			t.Fatalf("killing slurmd on %s: %v\n%s", node, err, out)
		}
		return
	}
	pid, err := os.ReadFile(filepath.Join(skc, "run/slurmd-"+node+".pid"))
	testkit.Must(t, err)
	if out, err := root("kill", "-9", strings.TrimSpace(string(pid))); err != nil {
		t.Fatalf("killing slurmd of %s: %v\n%s", node, err, out)
	}
}

// startSlurmd starts a node's slurmd again after killSlurmd.
func startSlurmd(t *testing.T, node string) {
	t.Helper()
	var out string
	var err error
	if vms {
		out, err = onNode(t, node, "systemctl", "start", "slurmd")
	} else {
		out, err = onNode(t, node, "slurmd", "-N", node, "-f", slurmConf())
	}
	if err != nil {
		t.Fatalf("restarting slurmd %s: %v %s", node, err, out)
	}
}

// kernelJob submits a job that starts a kernel with client.py, waits for it
// and its Epilog, and returns its id, output and the client's result.
func kernelJob(t *testing.T, u, opts, command string) (string, string, result) {
	t.Helper()
	id := sbatch(t, u, opts, command)
	if s := waitDone(t, id); s != "COMPLETED" {
		t.Fatalf("job %s: %s\n%s", id, s, output(t, u, id))
	}
	out := output(t, u, id)
	return id, out, parseResult(t, out)
}
