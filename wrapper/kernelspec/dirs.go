package kernelspec

import (
	"os"
	"path/filepath"
	"strings"
)

// Env is what decides where Jupyter looks: its environment variables and the
// user's home. Hooks fill it from the user database, since they get no HOME.
type Env struct {
	Getenv func(string) string // nil means os.Getenv
	Home   string
}

// Dir is one data directory in the search path and why it is there.
type Dir struct {
	Path   string `json:"path"`
	Origin string `json:"origin"` // JUPYTER_PATH, user, sys.prefix or system
}

// Kernels is the directory that holds this data directory's kernels.
func (d Dir) Kernels() string { return filepath.Join(d.Path, "kernels") }

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

// DataDir is the user's Jupyter data directory, as jupyter_core computes it:
// JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter.
func (e Env) DataDir() string {
	if d := e.getenv("JUPYTER_DATA_DIR"); d != "" {
		return d
	}
	if x := e.getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter")
	}
	return filepath.Join(e.Home, ".local", "share", "jupyter")
}

// RuntimeDir is where Jupyter writes connection files: JUPYTER_RUNTIME_DIR,
// else <data dir>/runtime.
func (e Env) RuntimeDir() string {
	if d := e.getenv("JUPYTER_RUNTIME_DIR"); d != "" {
		return d
	}
	return filepath.Join(e.DataDir(), "runtime")
}

// SysPrefix is sys.prefix of the Python that runs Jupyter, when known: an
// active virtual environment or conda environment.
func (e Env) SysPrefix() string {
	for _, k := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := e.getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// SearchPath lists the data directories in jupyter_core's order:
// JUPYTER_PATH entries, the user data dir, {sys.prefix}/share/jupyter,
// /usr/local/share/jupyter, /usr/share/jupyter. Duplicates are dropped.
func (e Env) SearchPath() []Dir {
	var dirs []Dir
	seen := map[string]bool{}
	add := func(p, origin string) {
		if p == "" {
			return
		}
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			dirs = append(dirs, Dir{Path: p, Origin: origin})
		}
	}
	for _, p := range strings.Split(e.getenv("JUPYTER_PATH"), string(os.PathListSeparator)) {
		add(p, "JUPYTER_PATH")
	}
	add(e.DataDir(), "user")
	if p := e.SysPrefix(); p != "" {
		add(filepath.Join(p, "share", "jupyter"), "sys.prefix")
	}
	add("/usr/local/share/jupyter", "system")
	add("/usr/share/jupyter", "system")
	return dirs
}
