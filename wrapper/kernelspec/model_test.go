package kernelspec

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{"5": "5", "5.7": "5.7", "5.7.2": "5.7.2", "4.12.0rc1": "4.12.0", "3.13.5+local": "3.13.5", " 8.6.3 ": "8.6.3", "5.x": "5"} {
		v, err := ParseVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "auto", "v5", ".5"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func TestMaxJSONDepth(t *testing.T) {
	for _, tt := range []struct {
		j    Jupyter
		want int
	}{
		{Jupyter{Core: Version{4, 12, 0}, Python: Version{3, 11, 2}, Jedi: true}, 2991},
		{Jupyter{Core: Version{4, 12, 0}, Python: Version{3, 11, 2}}, 989},
		{Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 10, -1}}, 989},
		{Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 12, -1}, Jedi: true}, 7997},
		{Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 13, 5}}, 9997},
		{Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 14, 0}}, 9997},
		{Jupyter{Core: Version{4, -1, -1}, Python: Version{-1, -1, -1}}, 989},  // Debian 12's Python assumed
		{Jupyter{Core: Version{5, -1, -1}, Python: Version{-1, -1, -1}}, 9997}, // Debian 13's
	} {
		if got := tt.j.MaxJSONDepth(); got != tt.want {
			t.Errorf("%v: MaxJSONDepth = %d, want %d", tt.j, got, tt.want)
		}
	}
}

// pyInstall lays out what detection reads of a Python install at prefix:
// bin/pythonX.Y (a file, never run), lib/pythonX.Y/os.py, and, if core is
// given, jupyter_core's dist-info in site (relative to prefix).
func pyInstall(t *testing.T, prefix, xy, site, core string) {
	t.Helper()
	testkit.Must(t, os.MkdirAll(filepath.Join(prefix, "bin"), 0o755))
	testkit.Must(t, os.MkdirAll(filepath.Join(prefix, "lib", "python"+xy), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(prefix, "lib", "python"+xy, "os.py"), nil, 0o644))
	testkit.Must(t, os.WriteFile(filepath.Join(prefix, "bin", "python"+xy), []byte("not run"), 0o755))
	if _, err := os.Lstat(filepath.Join(prefix, "bin", "python3")); err != nil {
		testkit.Must(t, os.Symlink("python"+xy, filepath.Join(prefix, "bin", "python3")))
	}
	if core != "" {
		testkit.Must(t, os.MkdirAll(filepath.Join(prefix, site, "jupyter_core-"+core+".dist-info"), 0o755))
	}
}

func script(t *testing.T, path, shebang string) {
	t.Helper()
	testkit.Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	testkit.Must(t, os.WriteFile(path, []byte("#!"+shebang+"\nfrom jupyter_core.command import main\n"), 0o755))
}

func envOf(home string, kv map[string]string) Env {
	return Env{Home: home, LookupEnv: func(k string) (string, bool) { v, ok := kv[k]; return v, ok }}
}

func TestDetectJupyter(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	conda := filepath.Join(root, "opt/conda")
	pyInstall(t, conda, "3.12", "lib/python3.12/site-packages", "5.7.2")
	script(t, filepath.Join(conda, "bin/jupyter"), filepath.Join(conda, "bin/python3"))
	testkit.Must(t, os.MkdirAll(filepath.Join(conda, "lib/python3.12/site-packages/jedi"), 0o755))

	// A Debian-like base with jupyter_core 4.12 in lib/python3/dist-packages,
	// and a venv over it.
	base := filepath.Join(root, "usr")
	pyInstall(t, base, "3.11", "lib/python3/dist-packages", "4.12.0")
	venv := filepath.Join(root, "venv")
	testkit.Must(t, os.MkdirAll(filepath.Join(venv, "bin"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("home = "+base+"/bin\ninclude-system-site-packages = true\nversion = 3.11.2\n"), 0o644))
	testkit.Must(t, os.Symlink(filepath.Join(base, "bin/python3"), filepath.Join(venv, "bin/python3")))
	script(t, filepath.Join(venv, "bin/jupyter"), filepath.Join(venv, "bin/python3"))
	// The same without system site packages: jupyter_core must be in it.
	iso := filepath.Join(root, "iso")
	testkit.Must(t, os.MkdirAll(filepath.Join(iso, "bin"), 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(iso, "pyvenv.cfg"), []byte("home = "+base+"/bin\ninclude-system-site-packages = false\n"), 0o644))
	testkit.Must(t, os.Symlink(filepath.Join(base, "bin/python3"), filepath.Join(iso, "bin/python3")))
	testkit.Must(t, os.MkdirAll(filepath.Join(iso, "lib/python3.11/site-packages/jupyter_core-5.3.1.dist-info"), 0o755))
	script(t, filepath.Join(iso, "bin/jupyter"), "/usr/bin/env python3")

	fifoDir := filepath.Join(root, "fifo")
	testkit.Must(t, os.MkdirAll(fifoDir, 0o755))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(fifoDir, "jupyter"), 0o755))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(fifoDir, "python3"), 0o755))

	userSite := filepath.Join(home, ".local/lib/python3.11/site-packages/jupyter_core-5.1.0.dist-info")
	pp := filepath.Join(root, "pp")
	testkit.Must(t, os.MkdirAll(filepath.Join(pp, "jupyter_core-5.0.0.dist-info"), 0o755))

	tests := []struct {
		name                 string
		env                  map[string]string
		setup                func()
		core, python, prefix string
		base                 string
		noUserSite, jedi     bool
		why                  string
	}{
		{name: "a conda install: the real executable finds the prefix", env: map[string]string{"PATH": conda + "/bin:/nonexistent"},
			core: "5.7.2", python: "3.12", prefix: conda, base: conda, jedi: true, why: "jupyter on PATH"},
		{name: "a venv over a Debian-like base", env: map[string]string{"PATH": venv + "/bin"},
			core: "4.12.0", python: "3.11", prefix: venv, base: base, why: "jupyter on PATH"},
		{name: "a venv without system site packages, #!/usr/bin/env python3", env: map[string]string{"PATH": iso + "/bin:" + base + "/bin"},
			core: "5.3.1", python: "3.11", prefix: iso, base: base, noUserSite: true},
		{name: "no jupyter: python3 with jupyter_core", env: map[string]string{"PATH": "relative/bin:" + base + "/bin"},
			core: "4.12.0", python: "3.11", prefix: base, base: base, why: "python3 on PATH"},
		{name: "pip install --user beats the system's", env: map[string]string{"PATH": base + "/bin", "HOME": home},
			setup: func() { testkit.Must(t, os.MkdirAll(userSite, 0o755)) }, core: "5.1.0", python: "3.11", prefix: base, base: base},
		{name: "PYTHONNOUSERSITE hides it again", env: map[string]string{"PATH": base + "/bin", "HOME": home, "PYTHONNOUSERSITE": "1"},
			core: "4.12.0", python: "3.11", prefix: base, base: base},
		{name: "PYTHONPATH comes first", env: map[string]string{"PATH": base + "/bin", "PYTHONPATH": pp},
			core: "5.0.0", python: "3.11", prefix: base, base: base},
		{name: "PYTHONHOME moves the prefix", env: map[string]string{"PATH": conda + "/bin", "PYTHONHOME": base + ":" + base},
			core: "4.12.0", python: "3.12", prefix: base, base: base},
		{name: "FIFOs on PATH and PYTHONPATH hang nothing", env: map[string]string{"PATH": fifoDir + ":" + conda + "/bin", "PYTHONPATH": filepath.Join(fifoDir, "jupyter")},
			core: "5.7.2", python: "3.12", prefix: conda, base: conda, jedi: true},
		{name: "nothing found: today's Jupyter, sys.prefix from VIRTUAL_ENV", env: map[string]string{"PATH": fifoDir, "VIRTUAL_ENV": "/v"},
			core: "5", python: "unknown", prefix: "/v", base: "", why: "assumed"},
		{name: "nothing found: a conda env is its own base", env: map[string]string{"CONDA_PREFIX": "/c"},
			core: "5", python: "unknown", prefix: "/c", base: "/c", why: "assumed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			done := make(chan Jupyter, 1)
			go func() { done <- DetectJupyter(envOf(home, tt.env)) }()
			var j Jupyter
			select {
			case j = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("DetectJupyter hangs")
			}
			if j.Core.String() != tt.core || j.Python.String() != tt.python || j.Prefix != tt.prefix || j.BasePrefix != tt.base ||
				j.NoUserSite != tt.noUserSite || j.Jedi != tt.jedi || !strings.Contains(j.Why, tt.why) {
				t.Errorf("got core %s python %s prefix %q base %q nousersite %v jedi %v (%s)\nwant core %s python %s prefix %q base %q nousersite %v jedi %v (%s)",
					j.Core, j.Python, j.Prefix, j.BasePrefix, j.NoUserSite, j.Jedi, j, tt.core, tt.python, tt.prefix, tt.base, tt.noUserSite, tt.jedi, tt.why)
			}
		})
	}
}

func TestResolveJupyter(t *testing.T) {
	e := envOf("/h", map[string]string{"PATH": "/nonexistent"})
	j, err := ResolveJupyter(e, "4.12", "3.11", "jupyter.core (flag --jupyter-core)")
	if err != nil || j.Generation() != 4 || j.Python.String() != "3.11" || !strings.Contains(j.Why, "--jupyter-core") {
		t.Errorf("ResolveJupyter(4.12, 3.11) = %v, %v", j, err)
	}
	if j, _ := ResolveJupyter(e, "auto", "auto", ""); j.Generation() != 5 || !strings.Contains(j.Why, "assumed") {
		t.Errorf("ResolveJupyter(auto) = %v", j)
	}
	for _, bad := range [][2]string{{"3", "auto"}, {"five", "auto"}, {"auto", "2.7"}, {"auto", "3"}} {
		if _, err := ResolveJupyter(e, bad[0], bad[1], "x"); err == nil {
			t.Errorf("ResolveJupyter(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// TestCheckOtherGeneration: a kernel in a venv the user owns and one of the
// same name in the user's directory. jupyter_core 5 takes the venv's, 4
// the user's; check says so on both.
func TestCheckOtherGeneration(t *testing.T) {
	root := t.TempDir()
	venv, home := filepath.Join(root, "venv"), filepath.Join(root, "home")
	inVenv := mkKernel(t, filepath.Join(venv, "share/jupyter/kernels"), "bert", `{"argv": ["python3", "-f", "{connection_file}"], "display_name": "v", "language": "python"}`)
	inUser := mkKernel(t, filepath.Join(home, ".local/share/jupyter/kernels"), "bert", `{"argv": ["python3", "-f", "{connection_file}"], "display_name": "u", "language": "python"}`)
	j := Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 13, -1}, Prefix: venv, BasePrefix: "/usr"}
	env := envOf(home, map[string]string{"HOME": home, "PYTHONNOUSERSITE": "1", "IPYTHONDIR": filepath.Join(root, "nowhere/x")})
	env.Jupyter = &j
	ch := Checker{Env: env, GPUFlag: "--nv", LookPath: func(string) (string, error) { return "/usr/bin/python3", nil }}
	ch.Other, ch.OtherName = env.OtherWinners()
	byDir := map[string][]Finding{}
	for _, en := range env.Kernels() {
		byDir[en.Dir] = ch.Check(en)
	}
	has := func(dir, code, text string) bool {
		for _, f := range byDir[dir] {
			if f.Code == code && strings.Contains(f.Message, text) {
				return true
			}
		}
		return false
	}
	if !has(inVenv, "jupyter-version", "jupyter_core 4 uses "+inUser) {
		t.Errorf("the venv's kernel, which 5 uses: %v", byDir[inVenv])
	}
	if !has(inUser, "shadowed", inVenv) || !has(inUser, "jupyter-version", "jupyter_core 4 uses this one") {
		t.Errorf("the user's kernel, which 4 uses: %v", byDir[inUser])
	}
}
