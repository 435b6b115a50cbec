package kernelspec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Detection reads files only: no Python is started (it runs in hooks), and
// every read is bounded and refuses anything but a regular file, so a
// user's FIFO named python3 hangs nothing.
const (
	maxPathEntries = 64      // PATH and PYTHONPATH entries looked at
	maxHead        = 512     // bytes of a script read for its #! line
	maxCfg         = 8 << 10 // bytes of a pyvenv.cfg
	maxSiteEntries = 20000   // names read from one site-packages directory
)

// DetectJupyter finds the Jupyter this environment would run: the first
// `jupyter` on PATH whose Python has jupyter_core (a pip or conda script
// names its Python on its #! line), else the first such python3. It reads
// jupyter_core's version from its jupyter_core-X.Y.Z.dist-info, the
// Python's version and sys.prefix from its install (pyvenv.cfg, the
// lib/pythonX.Y it runs from). Where none is found it assumes today's
// Jupyter (jupyter_core 5) with sys.prefix from VIRTUAL_ENV or
// CONDA_PREFIX, and Why says so.
func DetectJupyter(e Env) Jupyter {
	path := e.getenv("PATH")
	for _, name := range []string{"jupyter", "python3"} {
		for _, dir := range splitBounded(path) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue // a relative PATH entry depends on where Jupyter is started
			}
			exe := filepath.Join(dir, name)
			if !isExecutable(exe) {
				continue
			}
			interp := exe
			if name == "jupyter" {
				if interp = shebang(exe, path); interp == "" {
					continue
				}
			}
			py, ok := e.inspectPython(interp)
			if !ok || !py.Core.Known() {
				continue
			}
			py.Found = exe + py.Found
			py.Why = "detected from the first " + name + " on PATH with jupyter_core"
			return py
		}
	}
	j := Jupyter{Core: Version{5, -1, -1}, Python: Version{-1, -1, -1}}
	j.Prefix, j.BasePrefix = e.guessPrefix()
	j.Why = "assumed today's Jupyter: no jupyter or python3 with jupyter_core on PATH"
	return j
}

// guessPrefix is the sys.prefix and sys.base_prefix an activated
// environment implies: a venv's base is elsewhere (unknown), a conda
// environment is its own base.
func (e Env) guessPrefix() (prefix, base string) {
	if v := e.getenv("VIRTUAL_ENV"); v != "" {
		return v, ""
	}
	v := e.getenv("CONDA_PREFIX")
	return v, v
}

func splitBounded(list string) []string {
	parts := strings.SplitN(list, ":", maxPathEntries+1)
	return parts[:min(len(parts), maxPathEntries)]
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// readHead reads at most n bytes of a regular file.
func readHead(p string, n int64) ([]byte, error) {
	f, err := fsx.OpenRegular(p, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// shebang is the interpreter a script's #! line names (through
// /usr/bin/env, looked up on path), or "".
func shebang(script, path string) string {
	head, err := readHead(script, maxHead)
	if err != nil || !bytes.HasPrefix(head, []byte("#!")) {
		return ""
	}
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	f := strings.Fields(string(line))
	switch {
	case len(f) == 0:
		return ""
	case filepath.Base(f[0]) == "env":
		for _, a := range f[1:] {
			if strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
				continue
			}
			for _, dir := range splitBounded(path) {
				if p := filepath.Join(dir, a); filepath.IsAbs(dir) && isExecutable(p) {
					return p
				}
			}
			return ""
		}
		return ""
	}
	return f[0]
}

var pyDirRE = regexp.MustCompile(`^python(\d+)\.(\d+)$`)

// inspectPython works out, from files, what a Python interpreter at interp
// would have as sys.prefix, sys.base_prefix, version and site directories,
// and reads jupyter_core's version from the first site directory that has
// it. Found gets " (…)" naming the files read.
func (e Env) inspectPython(interp string) (Jupyter, bool) {
	j := Jupyter{Core: Version{-1, -1, -1}, Python: Version{-1, -1, -1}}
	interp = filepath.Clean(interp)
	venv := filepath.Dir(filepath.Dir(interp))
	cfg, cfgErr := readHead(filepath.Join(venv, "pyvenv.cfg"), maxCfg)
	if cfgErr != nil {
		venv = filepath.Dir(interp)
		cfg, cfgErr = readHead(filepath.Join(venv, "pyvenv.cfg"), maxCfg)
	}
	systemSite := true
	var base string
	if cfgErr == nil {
		// A virtual environment: sys.prefix is its directory, the base
		// the install its `home` names.
		kv := parseCfg(cfg)
		systemSite = strings.EqualFold(kv["include-system-site-packages"], "true")
		cfgVersion, verr := ParseVersion(firstNonEmpty(kv["version_info"], kv["version"]))
		if h := kv["home"]; h != "" {
			base, j.Python = findPrefix(filepath.Join(h, filepath.Base(interp)))
			if base == "" {
				// Python takes the base prefix from `home` itself (the
				// landmark search starts at home's parent), whatever binary
				// is there: a venv's bin/python names a /usr/bin/python
				// Debian does not have.
				want := ""
				if verr == nil && cfgVersion.Major >= 0 && cfgVersion.Minor >= 0 {
					want = fmt.Sprintf("python%d.%d", cfgVersion.Major, cfgVersion.Minor)
				}
				base, j.Python = prefixAbove(filepath.Dir(filepath.Clean(h)), want)
			}
		}
		if verr == nil && !j.Python.Known() {
			j.Python = cfgVersion
		}
		j.Prefix, j.BasePrefix = venv, base
		j.NoUserSite = !systemSite
	} else {
		j.Prefix, j.Python = findPrefix(interp)
		j.BasePrefix = j.Prefix
	}
	if home := e.getenv("PYTHONHOME"); home != "" {
		h, _, _ := strings.Cut(home, ":")
		j.Prefix, j.BasePrefix = h, h
	}
	if j.Prefix == "" || !j.Python.Known() {
		return j, false
	}
	xy := "python" + strconv.Itoa(j.Python.Major) + "." + strconv.Itoa(max(j.Python.Minor, 0))
	var sites []string
	if pp := e.getenv("PYTHONPATH"); pp != "" {
		sites = append(sites, splitBounded(pp)...)
	}
	if !j.NoUserSite && e.getenv("PYTHONNOUSERSITE") == "" {
		if ub := e.userBase(); ub != "" {
			sites = append(sites, filepath.Join(ub, "lib", xy, "site-packages"))
		}
	}
	prefixes := []string{j.Prefix}
	if j.BasePrefix != j.Prefix && systemSite && j.BasePrefix != "" {
		prefixes = append(prefixes, j.BasePrefix)
	}
	for _, p := range prefixes {
		sites = append(sites,
			filepath.Join(p, "local", "lib", xy, "dist-packages"), // Debian's
			filepath.Join(p, "lib", "python3", "dist-packages"),
			filepath.Join(p, "lib", xy, "dist-packages"),
			filepath.Join(p, "lib", xy, "site-packages"))
	}
	for _, s := range sites {
		if !filepath.IsAbs(s) {
			continue
		}
		core, jedi, from := scanSite(s)
		j.Jedi = j.Jedi || jedi
		if core.Known() && !j.Core.Known() {
			j.Core = core
			j.Found = " (#! " + interp + ", " + from + ")"
		}
	}
	return j, true
}

// findPrefix is where Python finds its standard library from the real
// executable: the first directory above it with lib/pythonX.Y/os.py.
func findPrefix(exe string) (string, Version) {
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return "", Version{-1, -1, -1}
	}
	want := ""
	if m := pyDirRE.FindStringSubmatch(filepath.Base(real)); m != nil {
		want = filepath.Base(real)
	}
	return prefixAbove(filepath.Dir(filepath.Dir(real)), want)
}

// prefixAbove is the first directory from start up with lib/<want>/os.py
// (want "pythonX.Y"; "" takes any lib/python3.*), as Python's landmark
// search finds its prefix.
func prefixAbove(start, want string) (string, Version) {
	for dir := start; ; dir = filepath.Dir(dir) {
		lib := filepath.Join(dir, "lib")
		names := []string{want}
		if want == "" {
			names = libPythons(lib)
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(lib, n, "os.py")); err == nil {
				m := pyDirRE.FindStringSubmatch(n)
				return dir, Version{atoi(m[1]), atoi(m[2]), -1}
			}
		}
		if dir == "/" {
			return "", Version{-1, -1, -1}
		}
	}
}

// libPythons lists lib/pythonX.Y directories, newest last.
func libPythons(lib string) []string {
	f, err := openDir(lib)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(maxSiteEntries)
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if pyDirRE.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

var distRE = regexp.MustCompile(`^jupyter_core-([0-9][0-9A-Za-z.+]*)\.(dist-info|egg-info)$`)

// scanSite looks in one site directory for jupyter_core's version (from its
// dist-info or egg-info name) and for jedi.
func scanSite(dir string) (core Version, jedi bool, from string) {
	core = Version{-1, -1, -1}
	f, err := openDir(dir)
	if err != nil {
		return core, false, ""
	}
	defer f.Close()
	names, _ := f.Readdirnames(maxSiteEntries)
	for _, n := range names {
		if n == "jedi" {
			jedi = true
		}
		if m := distRE.FindStringSubmatch(n); m != nil && !core.Known() {
			if v, err := ParseVersion(m[1]); err == nil {
				core, from = v, filepath.Join(dir, n)
			}
		}
	}
	return core, jedi, from
}

// openDir opens a directory a user may have named (PYTHONPATH, a prefix):
// O_DIRECTORY refuses anything else, and O_NONBLOCK keeps a FIFO in its
// place from blocking the open.
func openDir(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
}

func parseCfg(data []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return kv
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
