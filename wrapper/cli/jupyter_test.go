package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/internal/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// standIn plays Apptainer for the Jupyter test when the test binary is run
// under the name "apptainer": it parses the argv sifkernel wrote, really
// opens the image as a SIF (a corrupt one fails), logs the call, drops
// "exec [flags] IMAGE" and execs the rest on the host with the --env values
// set. It does not isolate anything: testcluster/bin/apptainer, used by the
// cluster tests, runs the command inside the image's root filesystem.
func standIn(args []string) int {
	if len(args) > 1 && args[1] == "--version" {
		fmt.Println("apptainer version 1.4.1-standin")
		return 0
	}
	cmd, err := apptainer.Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apptainer stand-in:", err)
		return 255
	}
	if _, err := sifimage.InspectPath(cmd.Image); err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: could not open image %s: %v\n", cmd.Image, err)
		return 255
	}
	if logPath := os.Getenv("SIFKERNEL_STANDIN_LOG"); logPath != "" {
		line, _ := json.Marshal(map[string]any{"argv": args, "image": cmd.Image, "uid": os.Getuid()})
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			f.Write(append(line, '\n'))
			f.Close()
		}
	}
	env := os.Environ()
	for _, kv := range cmd.Values("--env") {
		env = append(env, strings.Split(kv, ",")...)
	}
	prog, err := lookPath(cmd.Args[0], "/usr/bin:/bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "apptainer stand-in:", err)
		return 255
	}
	err = syscall.Exec(prog, cmd.Args, env)
	fmt.Fprintln(os.Stderr, "apptainer stand-in: exec:", err)
	return 255
}

// client is the Jupyter client the cluster tests run inside jobs.
const client = "../../testcluster/client.py"

// requireJupyter skips (fails in CI) without Debian's Jupyter packages.
func requireJupyter(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import jupyter_client, ipykernel").CombinedOutput()
	if err != nil {
		testkit.Skip(t, "needs /usr/bin/python3 with jupyter_client and ipykernel (apt-get install python3-jupyter-client python3-ipykernel): "+string(out))
	}
}

// TestJupyterStartsAddedKernel: a kernel made by `kernel add` is found by the
// real jupyter_client with the same argv, and KernelManager starts it through
// the runtime, runs print(1+1) and gets 2.
func TestJupyterStartsAddedKernel(t *testing.T) {
	requireJupyter(t)
	s := newSite(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(s.runtime)
	if err := os.Symlink(self, s.runtime); err != nil {
		t.Fatal(err)
	}
	if out, err := s.run(t, "kernel", "add", "bert", "--image", s.image, "--display-name", "BERT"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	written := readKernel(t, s.kernelDir("bert"))

	logPath := filepath.Join(s.root, "standin.log")
	py := exec.Command("/usr/bin/python3", client, "bert", "print(1+1)")
	py.Env = []string{
		"HOME=" + s.home, "PATH=/usr/bin:/bin", "SIFKERNEL_STANDIN_LOG=" + logPath,
		"JUPYTER_RUNTIME_DIR=" + s.env["JUPYTER_RUNTIME_DIR"], "PYTHONNOUSERSITE=1",
	}
	out, err := py.CombinedOutput()
	if err != nil {
		t.Fatalf("jupyter_client: %v\n%s", err, out)
	}
	_, report, ok := strings.Cut(string(out), "RESULT ")
	if !ok {
		t.Fatalf("the client printed no report:\n%s", out)
	}
	report, _, _ = strings.Cut(report, "\n")
	var got struct {
		Argv        []string `json:"argv"`
		DisplayName string   `json:"display_name"`
		Stdout      string   `json:"out"`
	}
	if err := json.Unmarshal([]byte(report), &got); err != nil {
		t.Fatalf("reading the client's report: %v\n%s", err, out)
	}
	if !slices.Equal(got.Argv, written.Argv) || got.DisplayName != "BERT" {
		t.Errorf("KernelSpecManager sees argv %q, display %q; kernel.json has %q", got.Argv, got.DisplayName, written.Argv)
	}
	if got.Stdout != "2\n" {
		t.Errorf("print(1+1) printed %q, want \"2\\n\"", got.Stdout)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), `"image":"`+s.image+`"`) {
		t.Errorf("the runtime was not called with the image: %s", log)
	}
}

// TestJupyterRejectsCorruptImage: with the image truncated after add, the
// runtime fails to open it and the kernel does not start.
func TestJupyterRejectsCorruptImage(t *testing.T) {
	requireJupyter(t)
	s := newSite(t)
	self, _ := os.Executable()
	os.Remove(s.runtime)
	os.Symlink(self, s.runtime)
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(s.image)
	os.WriteFile(s.image, data[:len(data)-1024], 0o644)
	out, err := s.run(t, "kernel", "check", "bert")
	if err == nil || !strings.Contains(out, "image-corrupt") {
		t.Errorf("check of a truncated image = %v\n%s", err, out)
	}
	cmd := exec.Command(s.runtime, readKernel(t, s.kernelDir("bert")).Argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "could not open image") {
		t.Errorf("the runtime started a truncated image: %v %s", err, out)
	}
}

func readKernel(t *testing.T, dir string) struct{ Argv []string } {
	t.Helper()
	var k struct{ Argv []string }
	data, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	return k
}
