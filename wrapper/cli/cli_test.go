package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// site is a user's world in a temporary directory: home, scratch with an
// image, an Apptainer install, and a site config that finds it.
type site struct {
	root, home, image, runtime, config string
	env                                map[string]string
	log                                bytes.Buffer
	exec                               func(string, []string, []string) error // Options.Exec
}

func newSite(t *testing.T) *site {
	t.Helper()
	root := t.TempDir()
	s := &site{root: root, home: filepath.Join(root, "home/alice")}
	s.runtime = filepath.Join(root, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	s.image = filepath.Join(root, "scratch/alice/bert.sif")
	for _, d := range []string{s.home, filepath.Dir(s.runtime), filepath.Dir(s.image)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Must(t, os.WriteFile(s.runtime, []byte("#!/bin/sh\necho apptainer version 1.4.1\n"), 0o755))
	if err := sifimage.Build(s.image, bytes.NewReader(sifimage.Minimal)); err != nil {
		t.Fatal(err)
	}
	s.config = filepath.Join(root, "etc/sifkernel/config.toml")
	testkit.Must(t, os.MkdirAll(filepath.Dir(s.config), 0o755))
	testkit.Must(t, os.WriteFile(s.config, []byte("[apptainer]\nsearch = [\""+filepath.Join(root, "opt/apps/tacc-apptainer/*/bin/apptainer")+"\"]\n"), 0o644))
	s.env = map[string]string{"SIFKERNEL_CONFIG": s.config, "PATH": fakeConda(t, root) + ":/usr/bin:/bin", "JUPYTER_RUNTIME_DIR": filepath.Join(s.home, ".local/share/jupyter/runtime")}
	return s
}

// fakeConda lays out the files of a conda install of JupyterLab (a
// jupyter script naming the prefix's python, Python 3.12's standard library
// landmark, jupyter_core 5.7.2's dist-info), so the Jupyter sifkernel
// detects is the same on every machine. It returns its bin directory.
func fakeConda(t *testing.T, root string) string {
	prefix := filepath.Join(root, "opt/conda")
	site := filepath.Join(prefix, "lib/python3.12/site-packages")
	testkit.Must(t, os.MkdirAll(filepath.Join(site, "jupyter_core-5.7.2.dist-info"), 0o755))
	testkit.Must(t, os.MkdirAll(filepath.Join(prefix, "bin"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(prefix, "lib/python3.12/os.py"), nil, 0o644))
	testkit.Must(t, os.WriteFile(filepath.Join(prefix, "bin/python3.12"), []byte("not run\n"), 0o755))
	testkit.Must(t, os.Symlink("python3.12", filepath.Join(prefix, "bin/python3")))
	testkit.Must(t, os.WriteFile(filepath.Join(prefix, "bin/jupyter"), []byte("#!"+prefix+"/bin/python3\n"), 0o755))
	return filepath.Join(prefix, "bin")
}

// run runs sifkernel in-process and returns its stdout and error.
func (s *site) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&s.log)
	err := Run(context.Background(), Options{
		Version: "test", Stdout: &out, Stderr: &errw, Home: s.home, Euid: 1000, Logger: logger,
		Getenv: func(k string) string { return s.env[k] },
		Now:    func() time.Time { return time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC) },
		Exec:   s.exec,
	}, append([]string{"sifkernel"}, args...))
	return out.String() + errw.String(), err
}

// paths hides the temporary root in golden output.
func (s *site) paths() []string { return []string{s.root, "$ROOT"} }

func (s *site) kernelDir(name string) string {
	return filepath.Join(s.home, ".local/share/jupyter/kernels", name)
}

func (s *site) writeKernel(t *testing.T, name, body string) {
	t.Helper()
	testkit.Must(t, os.MkdirAll(s.kernelDir(name), 0o755))
	if err := os.WriteFile(filepath.Join(s.kernelDir(name), "kernel.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKernelAdd(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "python", args: nil},
		{name: "gpu-always-binds-env", args: []string{"--gpu", "always", "--bind", "/work/alice", "--bind", "/scratch:/scratch:ro", "--env", "OMP_NUM_THREADS=4", "--display-name", "BERT <GPU>"}},
		{name: "r-no-stage", args: []string{"--language", "r", "--no-stage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t)
			args := append([]string{"kernel", "add", "bert", "--image", s.image}, tt.args...)
			out, err := s.run(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			data, err := os.ReadFile(filepath.Join(s.kernelDir("bert"), "kernel.json"))
			if err != nil {
				t.Fatal(err)
			}
			testkit.Golden(t, data, s.paths()...)
			if st, _ := os.Stat(filepath.Join(s.kernelDir("bert"), "kernel.json")); st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", st.Mode().Perm())
			}
		})
	}
}

func TestKernelAddRefusals(t *testing.T) {
	s := newSite(t)
	corrupt := filepath.Join(s.root, "scratch/alice/corrupt.sif")
	data := testkit.ReadFile(t, s.image)
	testkit.Must(t, os.WriteFile(corrupt, data[:len(data)-512], 0o644))
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{name: "missing image", args: []string{"kernel", "add", "x", "--image", "/scratch/gone.sif"}, want: "/scratch/gone.sif does not exist"},
		{name: "corrupt image", args: []string{"kernel", "add", "x", "--image", corrupt}, want: corrupt + ": corrupt SIF"},
		{name: "dot dot", args: []string{"kernel", "add", "..", "--image", s.image}, usage: true, want: `".." names a directory`},
		{name: "slash", args: []string{"kernel", "add", "a/b", "--image", s.image}, usage: true, want: "lowercase letters"},
		{name: "no image", args: []string{"kernel", "add", "x"}, usage: true, want: "needs --image"},
		{name: "bad env", args: []string{"kernel", "add", "x", "--image", s.image, "--env", "NOVALUE"}, usage: true, want: "NAME=VALUE"},
		{name: "bad gpu", args: []string{"kernel", "add", "x", "--image", s.image, "--gpu", "sometimes"}, usage: true, want: "--gpu"},
		{name: "bad language", args: []string{"kernel", "add", "x", "--image", s.image, "--language", "cobol"}, usage: true, want: "julia, python, r"},
		{name: "relative bind", args: []string{"kernel", "add", "x", "--image", s.image, "--bind", "data"}, usage: true, want: "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.run(t, tt.args...)
			var usage *UsageError
			if err == nil || errors.As(err, &usage) != tt.usage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v (usage %v), want %q (usage %v)\n%s", err, errors.As(err, &usage), tt.want, tt.usage, out)
			}
			if _, err := os.Stat(s.kernelDir("x")); err == nil {
				t.Error("a refused add left a kernel directory")
			}
		})
	}
}

func TestKernelAddExisting(t *testing.T) {
	s := newSite(t)
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(s.kernelDir("bert"), "kernel.json")
	first := testkit.ReadFile(t, file)
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image, "--gpu", "always"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second add = %v, want a refusal naming --force", err)
	}
	out, err := s.run(t, "kernel", "add", "bert", "--image", s.image, "--gpu", "always", "--force")
	if err != nil {
		t.Fatal(err)
	}
	backups, _ := filepath.Glob(file + ".bak-*")
	if len(backups) != 1 || !strings.Contains(out, backups[0]) {
		t.Fatalf("backups %v; output %s", backups, out)
	}
	if b := testkit.ReadFile(t, backups[0]); !bytes.Equal(b, first) {
		t.Error("the backup does not hold the replaced kernel.json")
	}
}

func TestKernelAddWithoutApptainer(t *testing.T) {
	s := newSite(t)
	testkit.Must(t, os.Remove(s.runtime))
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	k := kernelspec.Load(s.kernelDir("bert"))
	if k.Err != nil || k.Spec.Argv[0] != "apptainer" {
		t.Fatalf("argv[0] = %v (%v), want the bare name for PATH lookup", k.Spec, k.Err)
	}
	if !strings.Contains(s.log.String(), "apptainer not found") {
		t.Errorf("no warning logged: %s", s.log.String())
	}
	if _, err := s.run(t, "kernel", "add", "py", "--image", "docker://python:3.11"); err == nil || !strings.Contains(err.Error(), "needs Apptainer") {
		t.Errorf("pull without Apptainer = %v", err)
	}
}

func TestKernelAddPull(t *testing.T) {
	s := newSite(t)
	// A runtime that "pulls" by writing a real SIF to the path it is given.
	mk := filepath.Join(s.root, "mkimage")
	writeMkimage(t, mk)
	testkit.Must(t, os.WriteFile(s.runtime, []byte("#!/bin/sh\ncase \"$1\" in --version) echo apptainer version 1.4.1;; pull) echo \"INFO: pulling $3\"; exec "+mk+" \"$2\";; esac\n"), 0o755))
	s.env["SCRATCH"] = filepath.Join(s.root, "scratch/alice")
	out, err := s.run(t, "kernel", "add", "py", "--image", "docker://python:3.11-slim")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := filepath.Join(s.root, "scratch/alice/sifkernel-images/python_3.11-slim.sif")
	if !strings.Contains(out, "INFO: pulling docker://python:3.11-slim") {
		t.Errorf("pull output not shown: %s", out)
	}
	k := kernelspec.Load(s.kernelDir("py"))
	if k.Err != nil || !slices.Contains(k.Spec.Argv, want) {
		t.Fatalf("kernel does not use the pulled image %s: %v %v", want, k.Spec, k.Err)
	}
	if leftovers, _ := filepath.Glob(want + ".tmp-*"); len(leftovers) > 0 {
		t.Errorf("temporary pull files left: %v", leftovers)
	}
}

// writeMkimage builds the mkimage helper program into path.
func writeMkimage(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary itself acts as mkimage when SIFKERNEL_TEST_MKIMAGE is set.
	testkit.Must(t, os.WriteFile(path, []byte("#!/bin/sh\nSIFKERNEL_TEST_MKIMAGE=1 exec "+self+" \"$@\"\n"), 0o755))
}

func TestMain(m *testing.M) {
	if os.Getenv("SIFKERNEL_TEST_MKIMAGE") == "1" {
		if err := sifimage.Build(os.Args[len(os.Args)-1], bytes.NewReader(sifimage.Minimal)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// userKernels puts a realistic mix of kernels in alice's data dir.
func userKernels(t *testing.T, s *site) {
	t.Helper()
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	s.writeKernel(t, "tacc", `{
  "argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "--bind", "/run/user:/run/user",
           "`+s.image+`", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "BERT (hand-written)", "language": "python"
}
`)
	s.writeKernel(t, "curly", "{\n  “argv”: [“python3”, “-f”, “{connection_file}”],\n  “display_name”: “Curly”\n}\n")
}

func TestKernelListJSON(t *testing.T) {
	s := newSite(t)
	s.env["JUPYTER_PATH"] = filepath.Join(s.root, "empty-jupyter-path")
	s.env["XDG_DATA_HOME"] = ""
	userKernels(t, s)
	out, err := s.run(t, "kernel", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, []byte(dropSystemKernels(t, out)), s.paths()...)
}

// dropSystemKernels removes kernels under /usr, which depend on the machine.
func dropSystemKernels(t *testing.T, out string) string {
	t.Helper()
	var kept []string
	for _, block := range strings.SplitAfter(out, "    }") {
		if strings.Contains(block, `"dir": "/usr/`) {
			continue
		}
		kept = append(kept, block)
	}
	return strings.Replace(strings.Join(kept, ""), "},\n  ]", "}\n  ]", 1)
}

func TestKernelCheck(t *testing.T) {
	s := newSite(t)
	userKernels(t, s)
	out, err := s.run(t, "kernel", "check", "--json", "bert", "tacc", "curly")
	if !errors.Is(err, ErrProblemsFound) {
		t.Fatalf("check = %v, want ErrProblemsFound (exit 1)", err)
	}
	testkit.Golden(t, []byte(out), s.paths()...)

	out, err = s.run(t, "kernel", "check", "bert")
	if err != nil || !strings.Contains(out, "1 kernels checked: 0 errors, 0 warnings") {
		t.Errorf("check bert = %v\n%s", err, out)
	}
	if _, err := s.run(t, "kernel", "check", "nope"); err == nil || !strings.Contains(err.Error(), `no kernel named "nope"`) {
		t.Errorf("check of an unknown kernel = %v", err)
	}
}

func TestKernelFix(t *testing.T) {
	s := newSite(t)
	userKernels(t, s)
	tacc := filepath.Join(s.kernelDir("tacc"), "kernel.json")
	before := testkit.ReadFile(t, tacc)

	out, err := s.run(t, "kernel", "fix", "--dry-run", "tacc", "curly")
	if err != nil {
		t.Fatal(err)
	}
	if after := testkit.ReadFile(t, tacc); !bytes.Equal(before, after) || !strings.Contains(out, "dry run") {
		t.Fatal("--dry-run changed the file")
	}
	testkit.Golden(t, []byte(out), s.paths()...)

	if out, err = s.run(t, "kernel", "fix"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := strings.Count(out, "fixed "); n != 2 {
		t.Errorf("fixed %d kernels, want tacc and curly:\n%s", n, out)
	}
	if out, err := s.run(t, "kernel", "check"); err != nil {
		t.Errorf("check after fix = %v\n%s", err, out)
	}
	backups, _ := filepath.Glob(tacc + ".bak-20261125T093000Z")
	if b := testkit.ReadFile(t, backups[0]); !bytes.Equal(b, before) {
		t.Error("backup does not hold the original")
	}
}

func TestKernelRemove(t *testing.T) {
	s := newSite(t)
	if _, err := s.run(t, "kernel", "add", "bert", "--image", s.image); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(s.root, "shared-kernel")
	testkit.Must(t, os.MkdirAll(target, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(target, "kernel.json"), []byte("{}"), 0o644))
	testkit.Must(t, os.Symlink(target, s.kernelDir("linked")))
	testkit.Must(t, os.MkdirAll(s.kernelDir("notakernel"), 0o755))

	if _, err := s.run(t, "kernel", "remove", "bert"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.kernelDir("bert")); err == nil {
		t.Error("bert still there")
	}
	if _, err := s.run(t, "kernel", "rm", "linked"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "kernel.json")); err != nil {
		t.Error("removing a linked kernel removed the link's target")
	}
	if _, err := s.run(t, "kernel", "remove", "notakernel"); err == nil {
		t.Error("removed a directory without kernel.json")
	}
	var usage *UsageError
	if _, err := s.run(t, "kernel", "remove", ".."); !errors.As(err, &usage) {
		t.Errorf("remove .. = %v, want a usage error", err)
	}
	if _, err := os.Stat(filepath.Join(s.home, ".local/share/jupyter")); err != nil {
		t.Error("remove .. touched the data dir")
	}
}

func TestConfigShow(t *testing.T) {
	s := newSite(t)
	testkit.Must(t, os.WriteFile(s.config, []byte("[cache]\ndir = \"/local/sifkernel\"\nreserve = \"4GiB\"\n"), 0o644))
	testkit.Must(t, os.MkdirAll(filepath.Join(s.home, ".config/sifkernel"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(s.home, ".config/sifkernel/config.toml"), []byte("[kernel]\npull_dir = \"/scratch/alice/images\"\n"), 0o644))
	s.env["SIFKERNEL_LOG_FORMAT"] = "json"
	for _, asJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "json"}[asJSON], func(t *testing.T) {
			args := []string{"--log-level", "debug", "config", "show"}
			if asJSON {
				args = append(args, "--json")
			}
			out, err := s.run(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			testkit.Golden(t, []byte(out), s.paths()...)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	s := newSite(t)
	testkit.Must(t, os.WriteFile(s.config, []byte("[cache]\ndir = \"/x\"\nfrobnicate = true\n"), 0o644))
	if _, err := s.run(t, "config", "show"); err == nil || !strings.Contains(err.Error(), s.config+":3: unknown key \"cache.frobnicate\"") {
		t.Errorf("config show with a bad key = %v", err)
	}
	s.env["SIFKERNEL_CONFIG"] = filepath.Join(s.root, "missing.toml")
	if _, err := s.run(t, "config", "show"); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("a named config that is missing = %v", err)
	}
}

func TestHookDispatch(t *testing.T) {
	for _, ctx := range []string{"prolog_slurmd", "epilog_slurmd", "prolog_task", "epilog_task"} {
		t.Run(ctx, func(t *testing.T) {
			s := newSite(t)
			testkit.Must(t, os.WriteFile(s.config, []byte("this is not toml"), 0o644)) // a hook must survive a broken config
			s.env["SLURM_SCRIPT_CONTEXT"] = ctx
			s.env["SLURM_JOB_ID"] = "4242"
			if out, err := s.run(t); err != nil {
				t.Fatalf("hook %s = %v, want exit 0\n%s", ctx, err, out)
			}
			logged := s.log.String()
			name := map[string]string{"prolog_slurmd": "prolog", "epilog_slurmd": "epilog", "prolog_task": "taskprolog"}[ctx]
			if name == "" {
				name = ctx // a context sifkernel does nothing in
			}
			// Every line names the hook the same way: prolog, not prolog_slurmd.
			if strings.Contains(logged, "hook="+ctx+" ") && name != ctx {
				t.Errorf("a line names the hook %q, the others %q:\n%s", ctx, name, logged)
			}
			for _, w := range []string{"hook=" + name, "job=4242", "config unusable"} {
				if !strings.Contains(logged, w) {
					t.Errorf("log lacks %q:\n%s", w, logged)
				}
			}
		})
	}
	s := newSite(t)
	testkit.Must(t, os.WriteFile(s.config, []byte("this is not toml"), 0o644))
	if _, err := s.run(t, "kernel", "list"); err == nil {
		t.Error("an interactive command accepted a broken config")
	}
	for _, hook := range []string{"prolog", "epilog", "taskprolog"} {
		s.env["SLURM_JOB_ID"] = "x" // not a job: the hook only logs
		if _, err := s.run(t, hook); err != nil {
			t.Errorf("sifkernel %s with a broken config = %v, want exit 0", hook, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	s := newSite(t)
	for _, args := range [][]string{{"frobnicate"}, {"kernel", "frobnicate"}, {"--bogus"}, {"kernel", "list", "--bogus"}, {"completion", "fish"}, {"--log-level", "loud", "version"}} {
		var usage *UsageError
		if _, err := s.run(t, args...); !errors.As(err, &usage) {
			t.Errorf("%q = %v, want a usage error (exit 2)", args, err)
		}
	}
	for _, args := range [][]string{{"version"}, {"completion", "bash"}, {"completion", "zsh"}, {"kernel"}, {"--help"}} {
		if out, err := s.run(t, args...); err != nil || out == "" {
			t.Errorf("%q = %v, %q", args, err, out)
		}
	}
}

func TestReorder(t *testing.T) {
	app := (&env{}).app()
	tests := []struct{ in, want string }{
		{"sifkernel kernel add bert --image x.sif --force", "sifkernel kernel add --image x.sif --force bert"},
		{"sifkernel --config c kernel add bert -i=x -B /a -B /b", "sifkernel --config c kernel add -i=x -B /a -B /b bert"},
		{"sifkernel kernel check a b --json", "sifkernel kernel check --json a b"},
		{"sifkernel kernel add bert -- --image", "sifkernel kernel add -- bert --image"},
		{"sifkernel nosuch --x y", "sifkernel nosuch --x y"},
		{"sifkernel idev -p normal -t 5 --x", "sifkernel idev -p normal -t 5 --x"},
	}
	for _, tt := range tests {
		if got := strings.Join(reorder(app, strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("reorder(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDemo(t *testing.T) {
	s := newSite(t)
	t.Setenv("TMPDIR", t.TempDir())
	out, err := s.run(t, "demo")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{`+    "--nv",`, "added --nv (gpu policy auto: Slurm allocated GPUs 0)", "node-local copy",
		"job directory: gone", "cached images: 1, used by 0 jobs", "the user's own kernel.json: unchanged"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q:\n%s", w, out)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "sifkernel-demo-*")); len(left) != 0 {
		t.Errorf("demo left %v", left)
	}
}

func TestNodeCommand(t *testing.T) {
	s := newSite(t)
	s.env["SLURM_JOB_PARTITION"] = "rtx-dev"
	s.env["SLURM_JOB_GPUS"] = "1"
	out, err := s.run(t, "node", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Schema string
		GPU    struct {
			Present bool
			Devices []string
			Facts   []struct{ Source, Value string }
		}
		Host      struct{ CPUs int }
		Apptainer struct{ Path, Rule, Version string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Apptainer.Path != s.runtime || got.Apptainer.Version != "1.4.1" || !strings.HasPrefix(got.Apptainer.Rule, "search ") {
		t.Errorf("node --json apptainer = %+v, want %s found by search", got.Apptainer, s.runtime)
	}
	if got.Schema != SchemaNode || !got.GPU.Present || len(got.GPU.Devices) != 1 || got.GPU.Devices[0] != "1" || got.Host.CPUs < 1 {
		t.Errorf("node --json = %+v", got)
	}
	if out, err := s.run(t, "node"); err != nil || !strings.Contains(out, "GPUs: yes (Slurm allocated GPUs 1)") || !strings.Contains(out, "SLURM_JOB_GPUS = 1") {
		t.Errorf("node = %v\n%s", err, out)
	}
}

// TestNothingBlocks: a FIFO as kernel.json, or as an image, is refused at
// once by every command that reads it, with a message naming the file.
func TestNothingBlocks(t *testing.T) {
	s := newSite(t)
	testkit.Must(t, os.MkdirAll(s.kernelDir("pipe"), 0o755))
	fifo := filepath.Join(s.kernelDir("pipe"), "kernel.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(s.root, "scratch/alice/pipe.sif")
	if err := syscall.Mkfifo(image, 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeKernel(t, "img", `{"argv": ["apptainer", "exec", "`+image+`", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "i", "language": "python"}`)
	for _, tt := range []struct {
		args []string
		say  bool // the output names the FIFO for what it is
	}{
		{[]string{"kernel", "list"}, false},
		{[]string{"kernel", "check"}, true},
		{[]string{"kernel", "add", "pipe", "--image", s.image, "--force"}, true},
		{[]string{"stage", image}, true},
	} {
		args := tt.args
		done := make(chan string, 1)
		go func() { out, err := s.run(t, args...); done <- fmt.Sprint(out, err) }()
		select {
		case out := <-done:
			if tt.say && !strings.Contains(out, "named pipe") {
				t.Errorf("%v does not say what the pipe is:\n%s", args, out)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v blocked on a FIFO", args)
		}
	}
}

// TestConfigBesideTheBinaryComesFirst: a binary installed under a PREFIX
// (make install, a module) reads PREFIX/etc/sifkernel/config.toml, whatever
// /etc holds, so a module beside the package never runs with its config.
func TestConfigBesideTheBinaryComesFirst(t *testing.T) {
	prefix := t.TempDir()
	file := filepath.Join(prefix, "etc", "sifkernel", "config.toml")
	testkit.Must(t, os.MkdirAll(filepath.Dir(file), 0o755))
	testkit.Must(t, os.WriteFile(file, []byte("[cache]\ndir = \"/var/tmp/beside-the-binary\"\n"), 0o644))
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Version: "test", Stdout: &out, Stderr: &out, Home: t.TempDir(), Euid: 1000, Logger: logrus.New(),
		Getenv: func(string) string { return "" }, Self: filepath.Join(prefix, "bin", "sifkernel"),
	}, []string{"sifkernel", "config", "show"})
	if err != nil {
		t.Fatalf("config show: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "/var/tmp/beside-the-binary") || !strings.Contains(out.String(), file) {
		t.Errorf("config show does not use %s:\n%s", file, out.String())
	}
}

// TestIdevExecs: idev checks the container kernels, then replaces itself
// with idev (config idev.path), passing its arguments and SIFKERNEL_AUTO=1;
// a kernel with an error stops it before the queue.
func TestIdevExecs(t *testing.T) {
	s := newSite(t)
	idev := filepath.Join(s.root, "bin/idev")
	testkit.Must(t, os.MkdirAll(filepath.Dir(idev), 0o755))
	testkit.Must(t, os.WriteFile(idev, []byte("#!/bin/sh\n"), 0o755))
	conf, err := os.ReadFile(s.config)
	testkit.Must(t, err)
	testkit.Must(t, os.WriteFile(s.config, append(conf, []byte("[idev]\npath = \""+idev+"\"\n")...), 0o644))
	var got []string
	var gotEnv []string
	s.exec = func(argv0 string, argv, envv []string) error {
		got, gotEnv = append([]string{argv0}, argv...), envv
		return nil
	}
	if out, err := s.run(t, "idev", "-p", "rtx-dev", "-t", "01:00:00"); err != nil {
		t.Fatalf("idev: %v\n%s", err, out)
	}
	if want := []string{idev, "idev", "-p", "rtx-dev", "-t", "01:00:00"}; !slices.Equal(got, want) {
		t.Errorf("exec %q, want %q", got, want)
	}
	if !slices.Contains(gotEnv, "SIFKERNEL_AUTO=1") {
		t.Error("idev's environment lacks SIFKERNEL_AUTO=1")
	}
	got = nil
	s.writeKernel(t, "broken", `{"argv": ["`+s.runtime+`", "exec", "/scratch/gone.sif", "python3", "-f", "{connection_file}"], "display_name": "B"}`)
	if out, err := s.run(t, "idev", "-p", "rtx-dev"); err == nil || got != nil || !strings.Contains(out, "image-missing") {
		t.Errorf("idev with a broken kernel: %v, exec %q\n%s", err, got, out)
	}
}

// TestNodeHookTimeout: node reads PrologEpilogTimeout from scontrol (the
// one beside slurm.squeue; a fake here) and says whether prolog.timeout
// fits it, by the one rule (config.Config.PrologEpilogTimeout).
func TestNodeHookTimeout(t *testing.T) {
	tests := []struct{ slurm, config, want string }{
		{"PrologEpilogTimeout     = 180\n", "", "PrologEpilogTimeout 180 fits prolog.timeout 2m50s (at least 180)"},
		{"PrologEpilogTimeout     = 120\n", "", "warning: PrologEpilogTimeout 120 is below prolog.timeout 2m50s + 10s: a Prolog that runs to its deadline drains the node; set PrologEpilogTimeout=180 in slurm.conf, or prolog.timeout = \"1m50s\""},
		{"PrologEpilogTimeout     = 120\n", "[prolog]\ntimeout = \"110s\"\n", "PrologEpilogTimeout 120 fits prolog.timeout 1m50s (at least 120)"},
		{"PrologEpilogTimeout     = 65534\n", "", "PrologEpilogTimeout is unlimited"},
		{"", "", "PrologEpilogTimeout is unlimited"},
		{"FAIL", "", "PrologEpilogTimeout not checked"},
	}
	for _, tt := range tests {
		s := newSite(t)
		bin := filepath.Join(s.root, "slurm/bin")
		testkit.Must(t, os.MkdirAll(bin, 0o755))
		script := "#!/bin/sh\n[ \"$*\" = 'show config' ] || exit 2\nprintf 'ClusterName             = c\\n%s'\n"
		if tt.slurm == "FAIL" {
			script = "#!/bin/sh\necho 'slurm_load_ctl_conf error: Unable to contact slurm controller' >&2\nexit 1\n"
		}
		testkit.Must(t, os.WriteFile(filepath.Join(bin, "scontrol"), []byte(fmt.Sprintf(script, tt.slurm)), 0o755))
		cfg := testkit.ReadFile(t, s.config)
		testkit.Must(t, os.WriteFile(s.config, append(cfg, fmt.Sprintf("[slurm]\nsqueue = %q\n%s", filepath.Join(bin, "squeue"), tt.config)...), 0o644))
		out, err := s.run(t, "node")
		if err != nil || !strings.Contains(out, "hooks: "+tt.want) {
			t.Errorf("scontrol says %q: node = %v\n%s\nwant hooks: %s", tt.slurm, err, out, tt.want)
		}
	}
}

// TestAdoptArgsParse: the argv the lifecycle's --bcast gives srun is one the
// stage command takes, each flag where AdoptArgs puts it.
func TestAdoptArgsParse(t *testing.T) {
	job, err := slurm.ParseJobID("42")
	testkit.Must(t, err)
	args := lifecycle.AdoptArgs(job, "/node/jobs/42/bcast-k.sif", "/work/img.sif")
	app := (&env{}).app()
	var stage *cli.Command
	for _, c := range app.Commands {
		if c.Name == args[0] {
			stage = c
		}
	}
	if stage == nil {
		t.Fatalf("no command %q", args[0])
	}
	var got struct{ job, adopt string }
	var asJSON bool
	var rest []string
	app.Before, stage.Before = nil, nil // no config to read: only the parse is tested
	stage.Action = func(c *cli.Context) error {
		got.job, got.adopt, asJSON = c.String(lifecycle.StageJobFlag), c.String(lifecycle.StageAdoptFlag), c.Bool(lifecycle.StageJSONFlag)
		rest = c.Args().Slice()
		return nil
	}
	testkit.Must(t, app.Run(append([]string{"sifkernel"}, args...)))
	if got.job != "42" || got.adopt != "/node/jobs/42/bcast-k.sif" || !asJSON || !slices.Equal(rest, []string{"/work/img.sif"}) {
		t.Errorf("stage parsed %q as job %q adopt %q json %v images %q", args, got.job, got.adopt, asJSON, rest)
	}
}
