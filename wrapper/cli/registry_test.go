package cli

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
)

// registry is Debian's docker-registry serving on a loopback port, with the
// tests' Python image pushed to it by skopeo.
type registry struct {
	host string // 127.0.0.1:PORT
}

func startRegistry(t *testing.T) registry {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Skip(t, tool+" missing: apt-get install docker-registry skopeo umoci")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	testkit.Must(t, l.Close())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	testkit.Must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nlog:\n  level: error\n", filepath.Join(dir, "data"), host)), 0o644))
	cmd := exec.Command("docker-registry", "serve", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // a killed server's exit is an error
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, func() string { return "the registry did not answer" })
	out, err := exec.Command(filepath.Join(testkit.RepoRoot(), "testcluster", "image", "build"), "--oci", testkit.Apptainer(t)).Output()
	if err != nil {
		t.Fatalf("building the OCI layout: %v", err)
	}
	layout := strings.TrimSpace(string(out))
	if out, err := exec.Command("skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:"+layout+":py", "docker://"+host+"/sifkernel/python:test").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	return registry{host: host}
}

// TestKernelAddPullsFromRegistry: kernel add with a docker:// image pulls it
// with the real Apptainer from a registry on loopback (plain HTTP there:
// APPTAINER_NOHTTPS), and the pulled kernel starts inside it. A bad
// reference, an unreachable registry and an interrupted pull each say why
// and leave nothing in the pull directory.
func TestKernelAddPullsFromRegistry(t *testing.T) {
	s, _ := realSite(t)
	reg := startRegistry(t)
	t.Setenv("APPTAINER_NOHTTPS", "1")
	pullDir := filepath.Join(s.home, ".local/share/sifkernel/images")
	empty := func(when string) {
		t.Helper()
		if ents, _ := os.ReadDir(pullDir); len(ents) != 0 {
			t.Errorf("%s: the pull directory holds %v", when, ents)
		}
	}
	for _, tt := range []struct{ name, ref, want string }{
		{"missing tag", "docker://" + reg.host + "/sifkernel/python:missing", "manifest unknown"},
		{"unreachable registry", "docker://127.0.0.1:9/sifkernel/python:test", "connection refused"},
		{"invalid reference", "docker://" + reg.host + "/Not Valid", "invalid reference format"},
	} {
		t.Setenv("APPTAINER_CACHEDIR", t.TempDir())
		out, err := s.run(t, "kernel", "add", "bad", "--image", tt.ref)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was written") {
			t.Errorf("%s: err = %v, want it to say %q and that nothing was written\n%s", tt.name, err, tt.want, out)
		}
		empty(tt.name)
	}
	ref := "docker://" + reg.host + "/sifkernel/python:test"
	interruptedPull(t, s, ref)
	empty("an interrupted pull")

	t.Setenv("APPTAINER_CACHEDIR", t.TempDir())
	if out, err := s.run(t, "kernel", "add", "pulled", "--image", ref); err != nil {
		t.Fatalf("kernel add from the registry: %v\n%s", err, out)
	}
	argv := readKernel(t, s.kernelDir("pulled")).Argv
	pulled := filepath.Join(pullDir, kernels.ImageFileName(ref))
	if !strings.Contains(strings.Join(argv, " "), pulled) {
		t.Errorf("the kernel runs %q, want the pulled %s", argv, pulled)
	}
	py := exec.Command("/usr/bin/python3", client, "pulled")
	py.Env = []string{"HOME=" + s.home, "PATH=/usr/bin:/bin", "JUPYTER_RUNTIME_DIR=" + s.env["JUPYTER_RUNTIME_DIR"]}
	out, err := py.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"out": "`+testkit.ImageMarker+` True\n"`) {
		t.Errorf("the pulled kernel: %v\n%s", err, out)
	}
}

// interruptedPull runs sifkernel kernel add as a process, interrupts it as
// Ctrl-C would while Apptainer pulls, and checks it says so.
func interruptedPull(t *testing.T, s *site, ref string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sifkernel")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/sifkernel").CombinedOutput(); err != nil {
		t.Fatalf("building sifkernel: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "kernel", "add", "cut", "--image", ref)
	cmd.Env = []string{"HOME=" + s.home, "PATH=/usr/bin:/bin", "SIFKERNEL_CONFIG=" + s.config,
		"APPTAINER_NOHTTPS=1", "APPTAINER_CACHEDIR=" + t.TempDir()}
	pipe, err := cmd.StderrPipe()
	testkit.Must(t, err)
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once Apptainer itself has said something (its first INFO
	// line): the pull is under way, not yet started or already done.
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "INFO:") {
			break
		}
	}
	testkit.Must(t, cmd.Process.Signal(syscall.SIGINT))
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "interrupted") {
		t.Errorf("an interrupted pull: %v\n%s", err, out.String())
	}
}
