package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

const uid, gid = 1234, 1234

// binary is sifkernel built once for these tests, where the job user can run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sifkernel-bin-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "a directory for the test binary: %v\n", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sifkernel")
	// The Epilog's cleanup child beside it, as make build lays them out.
	for _, b := range []struct{ out, pkg string }{{binary, "../cmd/sifkernel"}, {filepath.Join(dir, CleanerName), "../cmd/sifkernel-cleanup"}} {
		build := append(append([]string{"build"}, testkit.BuildFlags()...), "-o", b.out, b.pkg)
		if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "removing %s: %v\n", dir, err)
	}
	os.Exit(code)
}

// site is one node with one user, alice (uid 1234), and her kernels.
type site struct {
	base, home, kernels, image, config, cacheDir string
	env                                          map[string]string
	log                                          bytes.Buffer
	user                                         slurm.User
	userKnown                                    bool
	cfgText                                      string
	cfgCache                                     string             // [cache] keys after cfgText's
	others                                       map[int]slurm.User // job users besides alice
}

func newSite(t *testing.T) *site {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "the lifecycle tests run Prolog and Epilog, which need root")
	}
	s := &site{base: testkit.SharedDir(t), userKnown: true}
	s.home = filepath.Join(s.base, "home/alice")
	s.kernels = filepath.Join(s.home, ".local/share/jupyter/kernels")
	s.cacheDir = filepath.Join(s.base, "node/cache")
	testkit.Must(t, os.MkdirAll(filepath.Join(s.base, "node"), 0o755))
	runtime := filepath.Join(s.base, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	testkit.Must(t, os.MkdirAll(filepath.Dir(runtime), 0o755))
	testkit.Must(t, os.WriteFile(runtime, []byte("#!/bin/sh\necho apptainer version 1.4.1\n"), 0o755))
	testkit.Must(t, os.MkdirAll(filepath.Join(s.base, "scratch"), 0o755))
	s.image = filepath.Join(s.base, "scratch/bert.sif")
	if err := sifimage.Build(s.image, bytes.NewReader(sifimage.Minimal)); err != nil {
		t.Fatal(err)
	}
	testkit.Must(t, os.Chown(s.image, uid, gid))
	// [cache] last: tests append cache keys (setConfig).
	// The site cache is off here: these tests are of a user's own cache
	// (site_test.go turns it on).
	s.cfgText = fmt.Sprintf("[metrics]\ndir = %q\n[apptainer]\nsearch = [%q]\ndefault_binds = []\n[cache]\ndir = %q\nreserve = \"0B\"\nlow_water = \"0B\"\n",
		s.metricsDir(), filepath.Join(s.base, "opt/apps/tacc-apptainer/*/bin/apptainer"), s.cacheDir)
	s.cfgCache = "site = false\n"
	s.config = filepath.Join(s.base, "config.toml")
	testkit.Must(t, os.WriteFile(s.config, []byte(s.cfgText+s.cfgCache), 0o644))
	s.user = slurm.User{Name: "alice", UID: uid, GID: gid, Home: s.home, Groups: []int{gid}}
	s.env = map[string]string{
		"SLURM_JOB_ID": "4242", "SLURM_JOB_UID": "1234", "SLURM_JOB_GID": "1234", "SLURM_JOB_USER": "alice",
		"SLURM_JOB_PARTITION": "rtx-dev", "SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0", "SLURMD_NODENAME": "c001",
	}
	maps.Copy(s.env, testkit.CoverEnv()) // make cover: the job user's child counts too
	s.addKernel(t, "bert", s.image, "")
	return s
}

// addKernel writes a kernel as `kernel add` would, owned by alice.
func (s *site) addKernel(t *testing.T, name, image, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`{"argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv"%s, %q,
	  "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
	  "display_name": %q, "language": "python"}`, extra, image, name)
	return s.writeKernel(t, name, body)
}

func (s *site) writeKernel(t *testing.T, name, body string) string {
	t.Helper()
	dir := filepath.Join(s.kernels, name)
	testkit.Must(t, os.MkdirAll(dir, 0o755))
	f := filepath.Join(dir, "kernel.json")
	testkit.Must(t, os.WriteFile(f, []byte(body), 0o644))
	s.chownHome(t)
	return f
}

func (s *site) chownHome(t testing.TB) {
	t.Helper()
	testkit.Must(t, filepath.WalkDir(s.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
	testkit.Must(t, os.Chmod(s.home, 0o700))
}

func (s *site) setConfig(t *testing.T, extra string) {
	t.Helper()
	testkit.Must(t, os.WriteFile(s.config, []byte(s.cfgText+s.cfgCache+extra), 0o644))
}

// lc is the lifecycle as root sees it.
func (s *site) lc(t *testing.T) *Env {
	t.Helper()
	cfg, err := config.Load(config.Files{Site: s.config, SiteExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(&s.log)
	return &Env{
		Config: cfg, ConfigFile: s.config, Log: l, Self: binary, Version: "test", Stdout: &bytes.Buffer{}, Now: time.Now,
		LookupEnv: func(k string) (string, bool) { v, ok := s.env[k]; return v, ok },
		LookupUser: func(u int) (slurm.User, error) {
			if u == uid && s.userKnown {
				return s.user, nil
			}
			if o, ok := s.others[u]; ok {
				return o, nil
			}
			return slurm.User{}, slurm.ErrUnknownUser
		},
	}
}

// asAlice runs `sifkernel ARGS` as alice with the job's environment.
func (s *site) asAlice(t *testing.T, extraEnv []string, args ...string) (string, error) {
	t.Helper()
	env := []string{"HOME=" + s.home, "SIFKERNEL_CONFIG=" + s.config}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(env, "PATH=/usr/bin:/bin"), extraEnv...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), err
}

func (s *site) jobDir(job string) string { return filepath.Join(s.cacheDir, "jobs", job) }

// metricsDir is where the site's root hooks count (metrics.dir).
func (s *site) metricsDir() string { return filepath.Join(s.base, "node", "metrics") }

func (s *site) overlay(t *testing.T, job, name string) *kernelspec.Spec {
	t.Helper()
	k := kernelspec.Load(filepath.Join(s.jobDir(job), "jupyter/kernels", name))
	if k.Err != nil {
		t.Fatalf("overlay %s: %v\nlog:\n%s", name, k.Err, s.log.String())
	}
	return k.Spec
}

// assertOwnedByAlice fails for anything under dir that alice does not own.
func assertOwnedByAlice(t *testing.T, dir string) {
	t.Helper()
	seen := 0
	testkit.Must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen++
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if o, _ := fsx.OwnerOf(st); o.UID != uid {
			t.Errorf("%s is owned by uid %d, not the job user", p, o.UID)
		}
		return nil
	}))
	if seen < 2 {
		t.Errorf("%s holds nothing: no ownership was checked", dir)
	}
}

func TestGPUJobLifecycle(t *testing.T) {
	s := newSite(t)
	s.writeKernel(t, "tacc", `{"argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "--bind", "/run/user:/run/user", "`+s.image+`",
	  "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "T", "language": "python"}`)
	testkit.Must(t, os.WriteFile(filepath.Join(s.kernels, "bert", "logo-64x64.png"), []byte("PNG"), 0o644))
	s.chownHome(t)
	ctx := context.Background()
	if err := s.lc(t).Prolog(ctx); err != nil {
		t.Fatal(err)
	}
	dir := s.jobDir("4242")
	st, err := os.Lstat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("job dir %v %v\n%s", st, err, s.log.String())
	}
	bert := s.overlay(t, "4242", "bert")
	staged := filepath.Join(s.cacheDir, "users/1234")
	if !slices.Contains(bert.Argv, "--nv") || !slices.ContainsFunc(bert.Argv, func(a string) bool { return strings.HasPrefix(a, staged) }) {
		t.Errorf("GPU overlay argv %q: want --nv and the staged image under %s", bert.Argv, staged)
	}
	if bert.Argv[0] != filepath.Join(s.base, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer") {
		t.Errorf("overlay argv[0] = %s", bert.Argv[0])
	}
	if b := testkit.ReadFile(t, filepath.Join(dir, "jupyter/kernels/bert/logo-64x64.png")); string(b) != "PNG" {
		t.Error("the logo was not copied")
	}
	if user := kernelspec.Load(filepath.Join(s.kernels, "bert")); user.Spec.Argv[0] != "/opt/apps/tacc-apptainer/1.3.3/bin/apptainer" {
		t.Error("the user's own kernel.json was changed")
	}
	assertOwnedByAlice(t, dir)
	assertOwnedByAlice(t, staged)
	for _, w := range []string{"hook=prolog", "job=4242", `kernel \"bert\" uses the staged`} {
		if !strings.Contains(s.log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, s.log.String())
		}
	}

	out, err := s.asAlice(t, []string{"SLURM_SCRIPT_CONTEXT=prolog_task", "JUPYTER_PATH=/opt/site/jupyter"})
	if err != nil {
		t.Fatal(err)
	}
	want := "export JUPYTER_PATH=" + dir + "/jupyter:/opt/site/jupyter\nexport SIFKERNEL_JOB_DIR=" + dir + "\n"
	if out != want {
		t.Errorf("TaskProlog printed %q, want %q", out, want)
	}

	for range 2 { // the Epilog is idempotent
		if err := s.lc(t).Epilog(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("job dir still there after the Epilog\n%s", s.log.String())
	}
	if strings.Contains(s.log.String(), "level=error") || strings.Contains(s.log.String(), "level=warn") {
		t.Errorf("a clean job logged problems:\n%s", s.log.String())
	}
	// The copy stays for the user's next job (keep_warm), used by none.
	m, _ := filepath.Glob(filepath.Join(staged, "*.sif"))
	refs, _ := filepath.Glob(filepath.Join(staged, "refs/*/*"))
	if len(m) != 1 || len(refs) != 0 {
		t.Errorf("after the last job: entries %v (want the one, kept), refs %v (want none)", m, refs)
	}
	if _, err := os.Stat(s.image); err != nil {
		t.Error("the source image was removed")
	}
}

func TestCPUJob(t *testing.T) {
	s := newSite(t)
	s.env["SLURM_JOB_PARTITION"] = "normal"
	delete(s.env, "SLURM_JOB_GPUS")
	delete(s.env, "CUDA_VISIBLE_DEVICES")
	if err := s.lc(t).Prolog(context.Background()); err != nil {
		t.Fatal(err)
	}
	bert := s.overlay(t, "4242", "bert")
	if slices.Contains(bert.Argv, "--nv") {
		t.Errorf("CPU overlay keeps --nv: %q", bert.Argv)
	}
	m, _, _ := bert.Sifkernel()
	if m.Overlay == nil || m.Overlay.GPU || !strings.Contains(m.Overlay.GPUReason, "not a GPU partition") {
		t.Errorf("provenance %+v", m.Overlay)
	}
}

// TestFailurePolicy: every job- or user-level fault leaves the Prolog
// succeeding, a line in the log naming the job and the reason, and the
// kernel using its source image (or skipped).
func TestFailurePolicy(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *site)
		log   string
		check func(t *testing.T, s *site)
	}{
		{name: "image missing", setup: func(t *testing.T, s *site) { testkit.Must(t, os.Remove(s.image)) }, log: "no such file",
			check: func(t *testing.T, s *site) { usesSource(t, s, "bert", s.image) }},
		{name: "image unreadable", setup: func(t *testing.T, s *site) {
			testkit.Must(t, os.Chown(s.image, 0, 0))
			testkit.Must(t, os.Chmod(s.image, 0o600))
		}, log: "permission denied",
			check: func(t *testing.T, s *site) { usesSource(t, s, "bert", s.image) }},
		{name: "image corrupt", setup: func(t *testing.T, s *site) { testkit.Must(t, os.Truncate(s.image, 2000)) }, log: "corrupt SIF",
			check: func(t *testing.T, s *site) { usesSource(t, s, "bert", s.image) }},
		{name: "kernel.json invalid", setup: func(t *testing.T, s *site) { s.writeKernel(t, "bert", `{"argv": ["apptainer", `) }, log: `kernel \"bert\" skipped`},
		{name: "kernel.json curly", setup: func(t *testing.T, s *site) { s.writeKernel(t, "bert", `{“argv”: [“apptainer”]}`) }, log: `kernel \"bert\" skipped`},
		{name: "kernel.json huge", setup: func(t *testing.T, s *site) {
			s.writeKernel(t, "bert", `{"argv": ["apptainer"], "x": "`+strings.Repeat("a", 2<<20)+`"}`)
		}, log: `kernel \"bert\" skipped`},
		{name: "kernel.json a directory", setup: func(t *testing.T, s *site) {
			p := filepath.Join(s.kernels, "bert", "kernel.json")
			testkit.Must(t, os.Remove(p))
			testkit.Must(t, os.Mkdir(p, 0o755))
			s.chownHome(t)
		}, log: `kernel \"bert\" skipped`},
		{name: "kernel.json symlink loop", setup: func(t *testing.T, s *site) {
			p := filepath.Join(s.kernels, "bert", "kernel.json")
			testkit.Must(t, os.Remove(p))
			testkit.Must(t, os.Symlink("kernel.json", p))
			s.chownHome(t)
		}, log: `kernel \"bert\" skipped`},
		{name: "apptainer not found", setup: func(t *testing.T, s *site) {
			testkit.Must(t, os.RemoveAll(filepath.Join(s.base, "opt")))
		}, log: "apptainer not found", check: func(t *testing.T, s *site) {
			if a := s.overlay(t, "4242", "bert").Argv[0]; a != "/opt/apps/tacc-apptainer/1.3.3/bin/apptainer" {
				t.Errorf("argv[0] = %s, want the kernel's own", a)
			}
		}},
		{name: "stage timeout", setup: func(t *testing.T, s *site) { s.setConfig(t, "stage_timeout = \"1ns\"\n") }, log: "stage timeout",
			check: func(t *testing.T, s *site) { usesSource(t, s, "bert", s.image) }},
		{name: "user unknown", setup: func(t *testing.T, s *site) { s.userKnown = false }, log: "user unknown to the system"},
		{name: "site config unreadable by the user", setup: func(t *testing.T, s *site) { testkit.Must(t, os.Chmod(s.config, 0o600)) },
			log: "user part as alice failed"},
		{name: "disk full", setup: func(t *testing.T, s *site) {
			testkit.Must(t, os.MkdirAll(s.cacheDir, 0o755))
			if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", s.cacheDir).Run(); err != nil {
				testkit.Skip(t, "mounting a tmpfs needs CAP_SYS_ADMIN: "+err.Error())
			}
			t.Cleanup(func() {
				if out, err := exec.Command("umount", "-l", s.cacheDir).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v %s", s.cacheDir, err, out)
				}
			})
			big := make([]byte, 200<<10)
			testkit.Must(t, sifimage.Build(s.image, bytes.NewReader(big)))
			testkit.Must(t, os.Chown(s.image, uid, gid))
		}, log: "no space", check: func(t *testing.T, s *site) { usesSource(t, s, "bert", s.image) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t)
			tt.setup(t, s)
			if err := s.lc(t).Prolog(context.Background()); err != nil {
				t.Fatalf("Prolog failed (the node would drain): %v", err)
			}
			if !strings.Contains(s.log.String(), tt.log) || !strings.Contains(s.log.String(), "job=4242") {
				t.Errorf("log lacks %q and the job id:\n%s", tt.log, s.log.String())
			}
			if tt.check != nil {
				tt.check(t, s)
			}
			if err := s.lc(t).Epilog(context.Background()); err != nil {
				t.Fatalf("Epilog failed: %v", err)
			}
		})
	}
}

func usesSource(t *testing.T, s *site, name, image string) {
	t.Helper()
	spec := s.overlay(t, "4242", name)
	if !slices.Contains(spec.Argv, image) {
		t.Errorf("overlay argv %q does not use the source %s", spec.Argv, image)
	}
}

func TestSecurity(t *testing.T) {
	t.Run("kernel.json links to a root-only file", func(t *testing.T) {
		s := newSite(t)
		secret := filepath.Join(s.base, "secret.json")
		testkit.Must(t, os.WriteFile(secret, []byte(`{"argv": ["apptainer", "exec", "TOPSECRET", "x", "{connection_file}"]}`), 0o600))
		p := filepath.Join(s.kernels, "bert", "kernel.json")
		testkit.Must(t, os.Remove(p))
		testkit.Must(t, os.Symlink(secret, p))
		s.chownHome(t)
		testkit.Must(t, s.lc(t).Prolog(context.Background()))
		// The job directory must exist with its report: a Prolog that made
		// nothing would pass the content check below without testing it.
		r, err := ReadReport(s.jobDir("4242"))
		if err != nil {
			t.Fatalf("the Prolog left no report: %v\n%s", err, s.log.String())
		}
		for _, k := range r.Kernels {
			if k.Name == "bert" && !k.Skipped {
				t.Errorf("a kernel.json the user cannot read was used: %+v", k)
			}
		}
		files := 0
		testkit.Must(t, filepath.WalkDir(s.jobDir("4242"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			if b, err := os.ReadFile(p); err != nil {
				t.Errorf("reading what the Prolog wrote: %v", err)
			} else if bytes.Contains(b, []byte("TOPSECRET")) {
				t.Errorf("%s holds the root-only file's content", p)
			}
			return nil
		}))
		if files == 0 {
			t.Error("the job directory holds no files: nothing was checked")
		}
	})
	t.Run("image links to a root-only file", func(t *testing.T) {
		s := newSite(t)
		secret := filepath.Join(s.base, "secret.sif")
		testkit.Must(t, sifimage.Build(secret, bytes.NewReader(sifimage.Minimal)))
		testkit.Must(t, os.Chmod(secret, 0o600))
		link := filepath.Join(s.home, "link.sif")
		testkit.Must(t, os.Symlink(secret, link))
		s.addKernel(t, "bert", link, "")
		testkit.Must(t, s.lc(t).Prolog(context.Background()))
		if m, _ := filepath.Glob(filepath.Join(s.cacheDir, "users/1234/*.sif")); len(m) != 0 {
			t.Errorf("a root-only image was staged for the user: %v", m)
		}
		usesSource(t, s, "bert", link)
	})
	t.Run("cache root made by another user", func(t *testing.T) {
		s := newSite(t)
		testkit.Must(t, os.MkdirAll(s.cacheDir, 0o755))
		testkit.Must(t, os.Chown(s.cacheDir, 65534, 65534))
		if err := s.lc(t).Prolog(context.Background()); err != nil {
			t.Fatalf("Prolog failed without opting in: %v", err)
		}
		if !strings.Contains(s.log.String(), "owned by uid 65534") {
			t.Errorf("log:\n%s", s.log.String())
		}
		if ents, _ := os.ReadDir(s.cacheDir); len(ents) != 0 {
			t.Errorf("wrote into a cache root another user owns: %v", ents)
		}
		s.setConfig(t, "[prolog]\nfail_node_on = [\"cache_root\"]\n")
		if err := s.lc(t).Prolog(context.Background()); !errors.Is(err, ErrNodeFault) {
			t.Errorf("with fail_node_on the Prolog = %v, want ErrNodeFault", err)
		}
	})
	t.Run("job dir replaced by a symlink", func(t *testing.T) {
		s := newSite(t)
		testkit.Must(t, s.lc(t).Prolog(context.Background()))
		victim := filepath.Join(s.base, "victim")
		testkit.Must(t, os.Mkdir(victim, 0o755))
		testkit.Must(t, os.WriteFile(filepath.Join(victim, "keep"), []byte("x"), 0o644))
		testkit.Must(t, os.RemoveAll(s.jobDir("4242")))
		testkit.Must(t, os.Symlink(victim, s.jobDir("4242")))
		testkit.Must(t, s.lc(t).Epilog(context.Background()))
		if _, err := os.Stat(filepath.Join(victim, "keep")); err != nil {
			t.Error("the Epilog followed the symlink and removed its target's files")
		}
		if _, err := os.Lstat(s.jobDir("4242")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("the symlink is still there")
		}
	})
	t.Run("hostile job ids", func(t *testing.T) {
		s := newSite(t)
		for _, id := range []string{"../x", "1/../../etc", "..", "4242\n", ""} {
			s.env["SLURM_JOB_ID"] = id
			if err := s.lc(t).Prolog(context.Background()); err != nil {
				t.Errorf("Prolog with job %q = %v", id, err)
			}
			if err := s.lc(t).Epilog(context.Background()); err != nil {
				t.Errorf("Epilog with job %q = %v", id, err)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(s.cacheDir, "jobs")); len(ents) != 0 {
			t.Errorf("job dirs made for hostile ids: %v", ents)
		}
		if _, err := os.Stat(filepath.Join(s.cacheDir, "x")); err == nil {
			t.Error("../x escaped the jobs directory")
		}
	})
	t.Run("taskprolog refuses newlines", func(t *testing.T) {
		s := newSite(t)
		testkit.Must(t, s.lc(t).Prolog(context.Background()))
		out, err := s.asAlice(t, []string{"SLURM_SCRIPT_CONTEXT=prolog_task", "JUPYTER_PATH=/x\nexport LD_PRELOAD=/tmp/evil.so"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "LD_PRELOAD") || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "export SIFKERNEL_JOB_DIR=") {
			t.Errorf("TaskProlog printed %q", out)
		}
	})
}

// TestNoRootHooks: a site without a Prolog. The TaskProlog (as the user)
// does the user part in the user's own cache, once for concurrent tasks.
func TestNoRootHooks(t *testing.T) {
	s := newSite(t)
	testkit.Must(t, os.MkdirAll(s.cacheDir, 0o755)) // root made the cache once, but no Prolog runs
	tmp := filepath.Join(s.base, "tmp")
	testkit.Must(t, os.Mkdir(tmp, 0o1777))
	testkit.Must(t, os.Chmod(tmp, 0o1777))
	outs := make(chan string, 4)
	for range 4 {
		go func() {
			out, err := s.asAlice(t, []string{"SLURM_SCRIPT_CONTEXT=prolog_task", "TMPDIR=" + tmp})
			if err != nil {
				out = "ERROR " + err.Error()
			}
			outs <- out
		}()
	}
	var first string
	for range 4 {
		out := <-outs
		if first == "" {
			first = out
		}
		if out != first || !strings.Contains(out, "export JUPYTER_PATH=") {
			t.Errorf("tasks disagree: %q vs %q", out, first)
		}
	}
	var dir string
	for _, l := range strings.Split(first, "\n") {
		if v, ok := strings.CutPrefix(l, "export SIFKERNEL_JOB_DIR="); ok {
			dir = v
		}
	}
	if !strings.HasPrefix(dir, filepath.Join(tmp, "sifkernel-1234")) {
		t.Fatalf("job dir %q, want it in the user's own cache under %s", dir, tmp)
	}
	r, err := ReadReport(dir)
	if err != nil || r.CreatedBy != "taskprolog" || len(r.Kernels) != 1 || !r.Kernels[0].Staged {
		t.Errorf("report %+v, %v", r, err)
	}
	assertOwnedByAlice(t, filepath.Dir(filepath.Dir(dir)))
}

// TestHooksCount: the Prolog counts a miss and the bytes it staged, a second
// job a hit, the Epilog its runs; a broken user part is a failure by reason;
// Metrics (as root) asks alice's own process for her part of the cache.
func TestHooksCount(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	testkit.Must(t, s.lc(t).Prolog(ctx))
	s.env["SLURM_JOB_ID"] = "4243"
	testkit.Must(t, s.lc(t).Prolog(ctx))
	testkit.Must(t, s.lc(t).Epilog(ctx))
	s.userKnown = false
	testkit.Must(t, s.lc(t).Prolog(ctx)) // no such user: counted, exit 0
	s.userKnown = true

	c, err := metrics.Read(s.metricsDir())
	testkit.Must(t, err)
	st, err := os.Stat(s.image)
	testkit.Must(t, err)
	if c.HookRuns["prolog"] != 3 || c.HookRuns["epilog"] != 1 {
		t.Errorf("hook runs = %v", c.HookRuns)
	}
	if c.Misses != 1 || c.Hits != 1 || c.BytesStaged != uint64(st.Size()) || c.StageSeconds <= 0 {
		t.Errorf("staging counters = %+v (image %d bytes)", c, st.Size())
	}
	if c.HookFailures["prolog"]["user_lookup"] != 1 || len(c.HookFailures["epilog"]) != 0 {
		t.Errorf("failures = %v", c.HookFailures)
	}

	snap, err := s.lc(t).Metrics(ctx)
	testkit.Must(t, err)
	if !snap.CacheUp || snap.UserErrors != 0 || len(snap.Users) != 1 || snap.CacheSize <= 0 || snap.CacheFree <= 0 || snap.CacheFree > snap.CacheSize {
		t.Fatalf("snapshot = %+v\n%s", snap, s.log.String())
	}
	if u := snap.Users[0]; u.UID != uid || u.User != "alice" || u.Entries != 1 || u.Bytes != st.Size() {
		t.Errorf("alice's usage = %+v", u)
	}
	var b bytes.Buffer
	testkit.Must(t, snap.WriteText(&b))
	if !strings.Contains(b.String(), `sifkernel_cache_bytes{uid="1234",user="alice"} `+strconv.FormatInt(st.Size(), 10)) {
		t.Errorf("text lacks alice's bytes:\n%s", b.String())
	}

	// As alice, the command reports her own part and the node's counters.
	out, err := s.asAlice(t, nil, "metrics")
	testkit.Must(t, err)
	for _, want := range []string{
		`sifkernel_cache_entries{uid="1234",user="1234"} 1`, // alice is not in this machine's user database
		`sifkernel_hook_runs_total{hook="prolog"} 3`,
		`sifkernel_cache_up 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sifkernel metrics as alice lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sifkernel_cache_filesystem_size_bytes 0\n") {
		t.Errorf("as alice, the cache file system was not measured:\n%s", out)
	}
}
