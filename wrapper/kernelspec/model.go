package kernelspec

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a dotted version number, as far as it was given: "5",
// "5.7" or "5.7.2". Missing parts are -1.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads "X", "X.Y" or "X.Y.Z" (a suffix after the numbers,
// such as "rc1" or "+local", is ignored).
func ParseVersion(s string) (Version, error) {
	v := Version{-1, -1, -1}
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	for i, p := range parts {
		end := 0
		for end < len(p) && end < 6 && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		if end == 0 {
			if i == 0 {
				return v, fmt.Errorf("%q is not a version number (want such as 5, 5.7 or 5.7.2)", s)
			}
			break
		}
		n, _ := strconv.Atoi(p[:end])
		*[]*int{&v.Major, &v.Minor, &v.Patch}[i] = n
		if end < len(p) {
			break
		}
	}
	return v, nil
}

// MarshalText writes the version as it reads ("" when unknown).
func (v Version) MarshalText() ([]byte, error) {
	if !v.Known() {
		return []byte{}, nil
	}
	return []byte(v.String()), nil
}

// Known says whether any part was given.
func (v Version) Known() bool { return v.Major >= 0 }

// AtLeast compares with major.minor (an unknown minor counts as 0).
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && max(v.Minor, 0) >= minor
}

func (v Version) String() string {
	if !v.Known() {
		return "unknown"
	}
	s := strconv.Itoa(v.Major)
	if v.Minor >= 0 {
		s += "." + strconv.Itoa(v.Minor)
		if v.Patch >= 0 {
			s += "." + strconv.Itoa(v.Patch)
		}
	}
	return s
}

// Jupyter is the Jupyter a user runs, in as much as discovery depends on
// it: its jupyter_core decides the search path (4.x or 5.x), its Python
// how deep a kernel.json may nest, and its sys.prefix the environment's
// data directory.
type Jupyter struct {
	// Model is Generation(), filled in for JSON output.
	Model  int     `json:"model"`
	Core   Version `json:"jupyter_core"`
	Python Version `json:"python"`
	// Prefix and BasePrefix are sys.prefix and sys.base_prefix ("" when no
	// Python was found); they differ in a virtual environment.
	Prefix     string `json:"sys_prefix,omitempty"`
	BasePrefix string `json:"sys_base_prefix,omitempty"`
	// NoUserSite: the Python's user site is off (a venv without system
	// site packages), so the Python user base is not searched.
	NoUserSite bool `json:"no_user_site,omitempty"`
	// Jedi: jedi is importable beside it. IPython imports jedi, which sets
	// Python's recursion limit to 3,000: on Python 3.11 and older that, not
	// 1,000, bounds how deep a kernel.json may nest.
	Jedi bool `json:"jedi,omitempty"`
	// Found names the files the versions were read from; Why says how
	// the model was chosen (detected, configured or assumed).
	Found string `json:"found,omitempty"`
	Why   string `json:"why"`
}

// Generation is the discovery model: 4 (jupyter_core 4.x) or 5 (5.x and
// later, whose search path has not changed since).
func (j Jupyter) Generation() int {
	if j.Core.Known() && j.Core.Major < 5 {
		return 4
	}
	return 5
}

// Described is j with Model filled in, for output.
func (j Jupyter) Described() Jupyter {
	j.Model = j.Generation()
	return j
}

// String says which model this is, in one line.
func (j Jupyter) String() string {
	s := fmt.Sprintf("jupyter_core %d.x model (jupyter_core %s, Python %s", j.Generation(), j.Core, j.Python)
	if j.Prefix != "" {
		s += ", sys.prefix " + j.Prefix
	}
	s += "): " + j.Why
	if j.Found != "" {
		s += ", " + j.Found
	}
	return s
}

// MaxJSONDepth is how deep a kernel.json may nest (the top-level object
// counts 1) and still load in jupyter_client on this Python, as measured
// in a fresh process with jupyter_client listing kernels:
//
//   - Python 3.11 and older: json's C scanner counts against the recursion
//     limit, 1,000 (989 levels load), or 3,000 once jedi is imported
//     (2,991 load; jupyter_client imports IPython, which imports jedi).
//   - Python 3.12: the C recursion limit, 8,000 in CPython 3.12's source
//     (not measured here: 7,997 assumed).
//   - Python 3.13 and later: the C recursion limit, 10,000 (9,997 load).
//
// A running JupyterLab calls from deeper frames than the test that
// measured this, so the last few levels below each limit are uncertain.
func (j Jupyter) MaxJSONDepth() int {
	switch py := j.python(); {
	case !py.AtLeast(3, 12) && j.Jedi:
		return 2991
	case !py.AtLeast(3, 12):
		return 989
	case !py.AtLeast(3, 13):
		return 7997
	}
	return 9997
}

// python is the Python version, or the one assumed for the generation:
// Debian 12's 3.11 for jupyter_core 4, 3.13 for 5.
func (j Jupyter) python() Version {
	if j.Python.Known() {
		return j.Python
	}
	if j.Generation() == 4 {
		return Version{3, 11, -1}
	}
	return Version{3, 13, -1}
}

// ResolveJupyter is the model for an environment given the jupyter.core
// and jupyter.python settings: "auto" (or "") keeps what DetectJupyter
// finds; a version replaces it, and Why says where it came from (from
// names the setting, such as "jupyter.core in /etc/sifkernel/config.toml").
func ResolveJupyter(e Env, core, python, from string) (Jupyter, error) {
	j := DetectJupyter(e)
	if core != "" && core != "auto" {
		v, err := ParseVersion(core)
		if err != nil || v.Major < 4 {
			return j, fmt.Errorf("jupyter.core %q: want auto or a jupyter_core version of 4 or later, such as 5 or 4.12", core)
		}
		j.Core, j.Why = v, "set by "+from
	}
	if python != "" && python != "auto" {
		v, err := ParseVersion(python)
		if err != nil || v.Major != 3 || v.Minor < 0 {
			return j, fmt.Errorf("jupyter.python %q: want auto or a Python 3 version, such as 3.11", python)
		}
		j.Python = v
		if core == "" || core == "auto" {
			j.Why += "; Python set by " + from
		}
	}
	return j, nil
}
