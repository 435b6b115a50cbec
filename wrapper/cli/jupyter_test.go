package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

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

// realSite is a site whose Apptainer, found by apptainer.search, is the
// real one behind the tests' logging front, and whose image is the tests'
// Python image.
func realSite(t *testing.T) (*site, string) {
	t.Helper()
	requireJupyter(t)
	real := testkit.Apptainer(t)
	image := testkit.PythonImage(t)
	s := newSite(t)
	logPath := filepath.Join(s.root, "apptainer.log")
	testkit.Must(t, os.Remove(s.runtime))
	testkit.LoggingApptainer(t, s.runtime, real, logPath)
	data, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.image, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return s, logPath
}

// loggedArgv reads the argv of each call the logging front saw.
func loggedArgv(t *testing.T, logPath string) [][]string {
	t.Helper()
	data := testkit.ReadOptional(t, logPath)
	var calls [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		_, enc, ok := strings.Cut(line, " ")
		raw, err := base64.StdEncoding.DecodeString(enc)
		if !ok || err != nil {
			continue
		}
		calls = append(calls, strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00"))
	}
	return calls
}

// TestJupyterStartsAddedKernel: a kernel made by `kernel add` is found by the
// real jupyter_client with the same argv, and KernelManager starts it through
// the real Apptainer, inside the image: it runs print(1+1) and gets 2, and
// reads the file only the image has.
func TestJupyterStartsAddedKernel(t *testing.T) {
	s, logPath := realSite(t)
	if out, err := s.run(t, "kernel", "add", "bert", "--image", s.image, "--display-name", "BERT"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	written := readKernel(t, s.kernelDir("bert"))
	code := "print(1+1); import os; print(open('/sifkernel-marker').read().strip(), os.path.isdir('/.singularity.d'))"
	py := exec.Command("/usr/bin/python3", client, "bert", code)
	py.Env = []string{
		"HOME=" + s.home, "PATH=/usr/bin:/bin",
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
	if want := "2\n" + testkit.ImageMarker + " True\n"; got.Stdout != want {
		t.Errorf("the kernel printed %q, want %q (inside the image, under Apptainer)", got.Stdout, want)
	}
	calls := loggedArgv(t, logPath)
	if len(calls) != 1 || !slices.Contains(calls[0], s.image) || calls[0][0] != "exec" {
		t.Errorf("Apptainer ran %q, want one exec of %s", calls, s.image)
	}
}

// TestJupyterRejectsCorruptImage: with the image truncated after add, check
// says so, and the real Apptainer refuses to run it.
func TestJupyterRejectsCorruptImage(t *testing.T) {
	s, _ := realSite(t)
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	testkit.Must(t, err)
	testkit.Must(t, f.Truncate(st.Size()/2))
	testkit.Must(t, f.Close())
	out, err := s.run(t, "kernel", "check", "bert")
	if err == nil || !strings.Contains(out, "image-corrupt") {
		t.Errorf("check of a truncated image = %v\n%s", err, out)
	}
	argv := readKernel(t, s.kernelDir("bert")).Argv
	cmd := exec.Command(argv[0], append(argv[1:len(argv)-5], "true")...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + s.home}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "FATAL") {
		t.Errorf("Apptainer ran a truncated image: %v %s", err, out)
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
