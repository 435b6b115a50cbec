package kernelspec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Env is what decides where Jupyter looks: its environment variables and the
// user's home. Hooks fill it from the user database, since they get no HOME.
type Env struct {
	Getenv func(string) string // nil means os.Getenv
	// LookupEnv tells a variable set empty from one not set (HOME="" is
	// "/" to Python, an unset HOME is the user database's); nil derives it
	// from Getenv.
	LookupEnv func(string) (string, bool)
	Home      string // the user database's home: used when HOME is not set
	// Jupyter is the Jupyter whose discovery is modelled; nil means
	// DetectJupyter's answer for this environment.
	Jupyter *Jupyter
}

// Model is the Jupyter this environment's discovery follows.
func (e Env) Model() Jupyter {
	if e.Jupyter != nil {
		return *e.Jupyter
	}
	return DetectJupyter(e)
}

// WithModel returns e with its model fixed, so it is detected once.
func (e Env) WithModel() Env {
	j := e.Model()
	e.Jupyter = &j
	return e
}

// Dir is one data directory in the search path and why it is there.
type Dir struct {
	Path   string `json:"path"`
	Origin string `json:"origin"` // JUPYTER_PATH, user, python user base, sys.prefix, system or ipython
}

// Kernels is the directory that holds this data directory's kernels,
// joined as Python's os.path.join does (no cleaning: "link/.." is for the
// system to resolve, and an empty JUPYTER_PATH entry gives "kernels").
func (d Dir) Kernels() string { return pjoin(d.Path, "kernels") }

// pjoin is Python's os.path.join of two parts.
func pjoin(a, b string) string {
	switch {
	case strings.HasPrefix(b, "/") || a == "":
		return b
	case strings.HasSuffix(a, "/"):
		return a + b
	}
	return a + "/" + b
}

func (e Env) getenv(k string) string {
	v, _ := e.lookup(k)
	return v
}

func (e Env) lookup(k string) (string, bool) {
	switch {
	case e.LookupEnv != nil:
		return e.LookupEnv(k)
	case e.Getenv != nil:
		v := e.Getenv(k)
		return v, v != ""
	}
	return os.LookupEnv(k)
}

// expandHome is Python's os.path.expanduser("~"): HOME if set (trailing
// slashes dropped, and "" meaning "/"), else the user database's home.
func (e Env) expandHome() string {
	h, ok := e.lookup("HOME")
	if !ok {
		h = e.Home
	}
	if h = strings.TrimRight(h, "/"); h == "" {
		return "/"
	}
	return h
}

// expandUser is os.path.expanduser of a path starting "~/".
func (e Env) expandUser(p string) string {
	h, ok := e.lookup("HOME")
	if !ok {
		h = e.Home
	}
	if out := strings.TrimRight(h, "/") + p[1:]; out != "" {
		return out
	}
	return "/"
}

// platformDirs is JUPYTER_PLATFORM_DIRS, which jupyter_core 5 honours.
func (e Env) platformDirs() bool {
	return e.Model().Generation() >= 5 && e.envset("JUPYTER_PLATFORM_DIRS")
}

// home is jupyter_core's get_home_dir: expanduser("~"), resolved.
func (e Env) home() string { return resolve(e.expandHome()) }

// resolve is Python's Path.resolve(strict=False): absolute, with every
// symbolic link that exists followed, and the rest of the path kept.
func resolve(p string) string {
	if !filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			p = pjoin(wd, p)
		}
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(filepath.Clean(p))
	if dir == "" || dir == p || base == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(resolve(filepath.Clean(dir)), base)
}

// DataDir is the user's Jupyter data directory, as jupyter_core computes it:
// JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter
// (with the home resolved).
func (e Env) DataDir() string {
	if d := e.getenv("JUPYTER_DATA_DIR"); d != "" {
		return d
	}
	if e.platformDirs() {
		// platformdirs' user_data_dir: XDG_DATA_HOME unless blank, else
		// ~/.local/share with the home as HOME gives it (not resolved).
		if x := e.getenv("XDG_DATA_HOME"); strings.TrimSpace(x) != "" {
			return pjoin(x, "jupyter")
		}
		return e.expandUser("~/.local/share/jupyter")
	}
	if x := e.getenv("XDG_DATA_HOME"); x != "" {
		return pjoin(x, "jupyter")
	}
	return pjoin(pjoin(pjoin(e.home(), ".local"), "share"), "jupyter")
}

// RuntimeDir is where Jupyter writes connection files: JUPYTER_RUNTIME_DIR,
// else <data dir>/runtime.
func (e Env) RuntimeDir() string {
	if d := e.getenv("JUPYTER_RUNTIME_DIR"); d != "" {
		return d
	}
	return pjoin(e.DataDir(), "runtime")
}

// SysPrefix is sys.prefix of the Python that runs Jupyter, when known (see
// DetectJupyter).
func (e Env) SysPrefix() string { return e.Model().Prefix }

// systemDirs are jupyter_core's SYSTEM_JUPYTER_PATH on Linux.
var systemDirs = []string{"/usr/local/share/jupyter", "/usr/share/jupyter"}

// SystemDirs is SYSTEM_JUPYTER_PATH: the two fixed directories, or with
// JUPYTER_PLATFORM_DIRS (jupyter_core 5) each XDG_DATA_DIRS entry's
// jupyter directory.
func (e Env) SystemDirs() []string {
	if !e.platformDirs() {
		return systemDirs
	}
	x := e.getenv("XDG_DATA_DIRS")
	if strings.TrimSpace(x) == "" {
		x = "/usr/local/share:/usr/share"
	}
	var out []string
	for _, p := range strings.Split(x, ":") {
		out = append(out, pjoin(p, "jupyter"))
	}
	return out
}

// envset is jupyter_core's reading of a flag variable.
func (e Env) envset(k string) bool {
	v, ok := e.lookup(k)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "no", "n", "false", "off", "0", "0.0":
		return false
	}
	return true
}

// SearchPath lists the data directories in the order of the model's
// jupyter_core (jupyter_path), then the IPython directory jupyter_client
// adds: JUPYTER_PATH entries (trailing slashes dropped, an empty entry
// meaning the working directory); the user data dir and the Python user
// base's share/jupyter, and {sys.prefix}/share/jupyter, in the order
// preferEnv decides; the system directories; <IPython dir>. Nothing is
// cleaned or de-duplicated, as in Jupyter.
func (e Env) SearchPath() []Dir {
	e = e.WithModel()
	var dirs []Dir
	if jp := e.getenv("JUPYTER_PATH"); jp != "" {
		for _, p := range strings.Split(jp, string(os.PathListSeparator)) {
			dirs = append(dirs, Dir{Path: strings.TrimRight(p, "/"), Origin: "JUPYTER_PATH"})
		}
	}
	user := []Dir{{Path: e.DataDir(), Origin: "user"}}
	if ub := e.userBase(); ub != "" && pjoin(pjoin(ub, "share"), "jupyter") != user[0].Path {
		user = append(user, Dir{Path: pjoin(pjoin(ub, "share"), "jupyter"), Origin: "python user base"})
	}
	system := e.SystemDirs()
	var env []Dir
	if p := e.SysPrefix(); p != "" {
		d := pjoin(pjoin(p, "share"), "jupyter")
		if e.Model().Generation() >= 5 {
			d = pathlibStr(d) // str(Path(sys.prefix, "share", "jupyter"))
		}
		if !slices.Contains(system, d) {
			env = append(env, Dir{Path: d, Origin: "sys.prefix"})
		}
	}
	if e.preferEnv() {
		dirs = append(append(dirs, env...), user...)
	} else {
		dirs = append(append(dirs, user...), env...)
	}
	for _, d := range system {
		dirs = append(dirs, Dir{Path: d, Origin: "system"})
	}
	if ip := e.ipythonDir(); ip != "" {
		dirs = append(dirs, Dir{Path: ip, Origin: "ipython"})
	}
	return dirs
}

// preferEnv says whether the environment's directory comes before the
// user's. jupyter_core 4: JUPYTER_PREFER_ENV_PATH is set (to a true
// value). jupyter_core 5: JUPYTER_PREFER_ENV_PATH's value if it is set at
// all; else yes in a virtual environment the user owns, or in a conda
// environment other than base (CONDA_PREFIX a prefix of sys.prefix,
// CONDA_DEFAULT_ENV not "base") the user owns.
func (e Env) preferEnv() bool {
	j := e.Model()
	if _, set := e.lookup("JUPYTER_PREFER_ENV_PATH"); set || j.Generation() < 5 {
		return e.envset("JUPYTER_PREFER_ENV_PATH")
	}
	if j.Prefix == "" {
		return false
	}
	if j.Prefix != j.BasePrefix && ownPath(j.Prefix) {
		return true
	}
	cp, inConda := e.lookup("CONDA_PREFIX")
	env, ok := e.lookup("CONDA_DEFAULT_ENV")
	if !ok {
		env = "base"
	}
	return inConda && strings.HasPrefix(j.Prefix, cp) && env != "base" && ownPath(j.Prefix)
}

// ownPath is jupyter_core's _do_i_own: the path, or its first existing
// parent, resolved, belongs to this process's effective user. (Jupyter
// first compares the owner's name with os.getlogin(), which is the same
// unless the user came through su.)
func ownPath(p string) bool {
	p = resolve(p)
	for {
		if st, err := os.Stat(p); err == nil {
			return statUID(st) == os.Geteuid()
		}
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
	}
}

// pathlibStr is str(pathlib.PurePosixPath(p)): repeated slashes and "."
// parts dropped, no trailing slash; ".." kept; two leading slashes kept.
func pathlibStr(p string) string {
	lead := ""
	switch {
	case strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///"):
		lead = "//"
	case strings.HasPrefix(p, "/"):
		lead = "/"
	}
	var parts []string
	for _, part := range strings.Split(p, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	if out := lead + strings.Join(parts, "/"); out != "" {
		return out
	}
	return "."
}

// userBase is site.getuserbase() when Python's user site is on
// (PYTHONNOUSERSITE unset or empty): PYTHONUSERBASE, else ~/.local with the
// home as HOME gives it (not resolved).
func (e Env) userBase() string {
	if e.getenv("PYTHONNOUSERSITE") != "" || e.Jupyter != nil && e.Jupyter.NoUserSite {
		return ""
	}
	if ub := e.getenv("PYTHONUSERBASE"); ub != "" {
		return ub
	}
	h, ok := e.lookup("HOME")
	if !ok {
		h = e.Home
	}
	return strings.TrimRight(h, "/") + "/.local"
}

// ipythonDir is IPython's get_ipython_dir as jupyter_client uses it, or ""
// where IPython would use a fresh temporary directory (no kernels there).
func (e Env) ipythonDir() string {
	ipdir, set := e.lookup("IPYTHONDIR")
	if !set {
		ipdir, set = e.lookup("IPYTHON_DIR")
	}
	if !set {
		home := e.home()
		ipdir = pjoin(home, ".ipython")
		xdg := e.getenv("XDG_CONFIG_HOME")
		if xdg == "" {
			xdg = pjoin(home, ".config")
		}
		if writableDir(xdg) {
			xdgDir := pjoin(xdg, "ipython")
			if writableDir(xdgDir) && !exists(ipdir) && !isLink(xdgDir) {
				ipdir = xdgDir // IPython 1's place, still honoured
			}
		}
	}
	if ipdir == "~" || strings.HasPrefix(ipdir, "~/") {
		ipdir = e.expandHome() + ipdir[1:]
	}
	ipdir = filepath.Clean(ipdir) // os.path.normpath: lexical
	switch {
	case exists(ipdir) && !writableDir(ipdir):
		return ""
	case !exists(ipdir) && !writableDir(filepath.Dir(ipdir)):
		return ""
	}
	return ipdir
}

func writableDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir() && unix.Access(p, unix.W_OK) == nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func isLink(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode()&os.ModeSymlink != 0
}

func statUID(st os.FileInfo) int {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return -1
}
