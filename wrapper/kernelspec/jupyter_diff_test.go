package kernelspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

// The differential test: each layout is a home, data directories and an
// environment; the Jupyter of each Debian release (12: this machine's
// jupyter_client 7.4 / jupyter_core 4.12 on Python 3.11; 13: jupyter_client
// 8.6 / jupyter_core 5.7 on Python 3.13, in a chroot that
// testcluster/debian13/build makes) says which kernel directories it
// searches, which kernel wins each name and which load, and sifkernel, run
// in the same file system and environment, must say the same, except where
// the table of intended differences says why not. The Jupyter run is the
// one the layout's PATH finds, as a user's shell would.

// pyDriver prints what jupyter_client sees, and checks fixed files.
const pyDriver = `
import json, logging, os, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
import jupyter_core
from jupyter_client.kernelspec import KernelSpecManager, KernelSpec
m = KernelSpecManager()
out = {"dirs": list(m.kernel_dirs), "found": m.find_kernel_specs(), "loaded": sorted(m.get_all_specs())}
out["model"] = {"jupyter_core": jupyter_core.__version__, "python": "%d.%d" % sys.version_info[:2], "sys_prefix": sys.prefix}
fixes = []
for orig, fixed, changed in json.loads(sys.argv[1]):
    r = {"file": fixed}
    try:
        after = json.loads(open(fixed, encoding="utf-8").read())
        before = json.loads(open(orig, encoding="utf-8").read())
        KernelSpec.from_resource_dir(os.path.dirname(fixed))
        lost = [k for k in before if k not in changed and json.dumps(before[k]) != json.dumps(after.get(k))]
        r["lost"] = lost
        r["order"] = [k for k in after if k in before] == [k for k in before if k in after]
    except Exception as e:
        r["error"] = repr(e)
    fixes.append(r)
out["fixes"] = fixes
print(json.dumps(out))
`

// layout is one arrangement of kernels and environment.
type layout struct {
	t    *testing.T
	root string
	home string
	cwd  string
	env  map[string]string // HOME is set to home unless unset lists it
	fix  []string          // kernel directories to run kernel fix on
	// wantWinner: the kernel directory each name must resolve to, on both
	// sides (beyond agreeing with each other).
	wantWinner map[string]string
}

func (l *layout) dir(parts ...string) string {
	p := filepath.Join(append([]string{l.root}, parts...)...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// kernel writes data/kernels/name/kernel.json.
func (l *layout) kernel(data, name, body string) string {
	dir := filepath.Join(data, "kernels", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return dir
}

func (l *layout) userData() string { return l.dir("home", ".local", "share", "jupyter") }

// venv makes a virtual environment as python3 -m venv makes one (a
// pyvenv.cfg naming the base install, bin/python3 a link to the system's
// Python, with the system's site packages, where Jupyter is) and a jupyter
// script in it as pip writes one, and activates it as bin/activate does.
func (l *layout) venv(name string) string {
	dir := l.dir(name)
	testkit.Must(l.t, os.WriteFile(filepath.Join(dir, "pyvenv.cfg"), []byte("home = /usr/bin\ninclude-system-site-packages = true\n"), 0o644))
	l.link("/usr/bin/python3", filepath.Join(dir, "bin", "python3"))
	l.script(filepath.Join(dir, "bin"))
	l.env["VIRTUAL_ENV"] = dir
	l.env["PATH"] = filepath.Join(dir, "bin") + ":" + l.env["PATH"]
	return dir
}

// conda makes a conda-like prefix: an install of its own, whose sys.prefix
// and sys.base_prefix are both the prefix (the stand-in: the system's
// Python reached through PYTHONHOME, where a real conda has its own
// interpreter, since one interpreter cannot serve both Debian releases),
// and activates it as `conda activate env` does.
func (l *layout) conda(name, env string) string {
	dir := l.dir(name)
	for _, v := range []string{"3.11", "3.13"} {
		l.link("/usr/lib/python"+v, filepath.Join(dir, "lib", "python"+v))
	}
	l.link("/usr/lib/python3/dist-packages", filepath.Join(dir, "lib", "python3", "dist-packages"))
	l.link("/usr/bin/python3", filepath.Join(dir, "bin", "python3"))
	l.script(filepath.Join(dir, "bin"))
	l.env["PYTHONHOME"] = dir
	l.env["CONDA_PREFIX"] = dir
	l.env["CONDA_DEFAULT_ENV"] = env
	l.env["CONDA_SHLVL"] = "1"
	l.env["PATH"] = filepath.Join(dir, "bin") + ":" + l.env["PATH"]
	return dir
}

// script writes bin/jupyter as pip and conda write it: its #! names the
// environment's own python3.
func (l *layout) script(bin string) {
	body := "#!" + filepath.Join(bin, "python3") + "\nimport sys\nfrom jupyter_core.command import main\nsys.exit(main())\n"
	testkit.Must(l.t, os.WriteFile(filepath.Join(bin, "jupyter"), []byte(body), 0o755))
}

func good(name string) string {
	return fmt.Sprintf(`{"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": %q, "language": "python"}`, name)
}

func (l *layout) link(target, name string) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		l.t.Fatal(err)
	}
}

// kernelWith is a directory whose kernel.json is made by fn.
func (l *layout) kernelWith(data, name string, fn func(file string)) {
	dir := filepath.Join(data, "kernels", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	fn(filepath.Join(dir, FileName))
}

const (
	fixable = `{"language": "python", "x-nan": NaN, "display_name": "bad \ud800 surrogate",
  "argv": ["/opt/apps/tacc-apptainer/0.0.1/bin/apptainer", "exec", "--nv", "%s", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "metadata": {"debugger": true, "x-big": 1e400}, "kernel_protocol_version": 5.3, "env": {"A": "1"}}`
)

var layouts = []struct {
	name  string
	setup func(l *layout)
}{
	{"one kernel in the user data dir", func(l *layout) { l.kernel(l.userData(), "bert", good("b")) }},
	{"JUPYTER_PATH before the user dir", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("jp")
		l.kernel(l.dir("jp"), "bert", good("jp"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"two JUPYTER_PATH entries, first wins", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a") + ":" + l.dir("b")
		l.kernel(l.dir("a"), "k", good("a"))
		l.kernel(l.dir("b"), "k", good("b"))
		l.kernel(l.dir("b"), "only-b", good("b"))
	}},
	{"JUPYTER_PATH entry with trailing slashes", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a") + "//"
		l.kernel(l.dir("a"), "k", good("a"))
	}},
	{"leading empty JUPYTER_PATH entry is the working directory", func(l *layout) {
		l.env["JUPYTER_PATH"] = ":" + l.dir("a")
		l.cwd = l.dir("cwd")
		l.kernel(l.cwd, "here", good("cwd"))
		l.kernel(l.dir("a"), "here", good("a"))
	}},
	{"double colon in JUPYTER_PATH", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a") + "::" + l.dir("b")
		l.cwd = l.dir("cwd")
		l.kernel(l.cwd, "k", good("cwd"))
		l.kernel(l.dir("b"), "k", good("b"))
	}},
	{"JUPYTER_PATH of / is the working directory", func(l *layout) {
		l.env["JUPYTER_PATH"] = "/"
		l.cwd = l.dir("cwd")
		l.kernel(l.cwd, "slash", good("cwd"))
	}},
	{"relative JUPYTER_PATH entry", func(l *layout) {
		l.env["JUPYTER_PATH"] = "rel"
		l.cwd = l.dir("cwd")
		l.kernel(l.dir("cwd", "rel"), "r", good("rel"))
	}},
	{"link/.. in JUPYTER_PATH follows the link first", func(l *layout) {
		l.kernel(l.dir("real"), "up", good("real parent"))
		l.dir("real", "inner")
		l.link(l.dir("real", "inner"), filepath.Join(l.root, "elsewhere", "link"))
		l.kernel(l.dir("elsewhere"), "up", good("lexical parent"))
		l.env["JUPYTER_PATH"] = filepath.Join(l.root, "elsewhere") + "/link/.."
	}},
	{"JUPYTER_DATA_DIR moves the data dir, the user base stays", func(l *layout) {
		l.env["JUPYTER_DATA_DIR"] = l.dir("data")
		l.kernel(l.dir("data"), "d", good("data"))
		l.kernel(l.userData(), "u", good("user base"))
	}},
	{"XDG_DATA_HOME moves the data dir, the user base stays", func(l *layout) {
		l.env["XDG_DATA_HOME"] = l.dir("xdg")
		l.kernel(l.dir("xdg", "jupyter"), "x", good("xdg"))
		l.kernel(l.userData(), "u", good("user base"))
	}},
	{"PYTHONNOUSERSITE drops the user base", func(l *layout) {
		l.env["XDG_DATA_HOME"] = l.dir("xdg")
		l.env["PYTHONNOUSERSITE"] = "1"
		l.kernel(l.userData(), "u", good("user base"))
	}},
	{"PYTHONUSERBASE", func(l *layout) {
		l.env["PYTHONUSERBASE"] = l.dir("ub")
		l.kernel(l.dir("ub", "share", "jupyter"), "ub", good("ub"))
	}},
	{"HOME unset: the user database's home", func(l *layout) { delete(l.env, "HOME") }},
	{"HOME empty is /", func(l *layout) { l.env["HOME"] = "" }},
	{"HOME with trailing slashes", func(l *layout) {
		l.env["HOME"] = l.home + "//"
		l.kernel(l.userData(), "bert", good("b"))
	}},
	{"HOME a symlink: data dir resolved, user base not", func(l *layout) {
		l.kernel(l.userData(), "bert", good("b"))
		l.link(l.home, filepath.Join(l.root, "homelink"))
		l.env["HOME"] = filepath.Join(l.root, "homelink")
	}},
	{"kernels in ~/.ipython", func(l *layout) { l.kernel(l.dir("home", ".ipython"), "ip", good("ipython")) }},
	{"IPYTHONDIR", func(l *layout) {
		l.env["IPYTHONDIR"] = l.dir("ipd")
		l.kernel(l.dir("ipd"), "ip", good("ipd"))
	}},
	{"IPYTHONDIR empty is the working directory", func(l *layout) {
		l.env["IPYTHONDIR"] = ""
		l.cwd = l.dir("cwd")
		l.kernel(l.cwd, "ipcwd", good("cwd"))
	}},
	{"legacy ~/.config/ipython", func(l *layout) {
		l.kernel(l.dir("home", ".config", "ipython"), "legacy", good("xdg ipython"))
	}},
	{"a broken kernel.json link does not shadow a later kernel", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { l.link("/nonexistent", f) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"a directory as kernel.json does not shadow", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { testkit.Must(l.t, os.Mkdir(f, 0o755)) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"/dev/null as kernel.json does not shadow", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { l.link("/dev/null", f) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"a FIFO as kernel.json does not shadow and does not hang", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { testkit.Must(l.t, syscall.Mkfifo(f, 0o644)) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"a kernel directory that is a symlink counts", func(l *layout) {
		l.kernel(l.dir("store"), "real", good("linked"))
		l.link(filepath.Join(l.root, "store", "kernels", "real"), filepath.Join(l.userData(), "kernels", "linked"))
	}},
	{"a broken kernel directory link does not count", func(l *layout) {
		l.link("/nonexistent", filepath.Join(l.userData(), "kernels", "gone"))
	}},
	{"the kernels directory a symlink", func(l *layout) {
		l.kernel(l.dir("store"), "via", good("via"))
		testkit.Must(l.t, os.MkdirAll(filepath.Join(l.root, "jp"), 0o755))
		l.link(filepath.Join(l.root, "store", "kernels"), filepath.Join(l.root, "jp", "kernels"))
		l.env["JUPYTER_PATH"] = filepath.Join(l.root, "jp")
	}},
	{"names with a space, @ and ;", func(l *layout) {
		for _, n := range []string{"my kernel", "a@b", "x;y"} {
			l.kernel(l.userData(), n, good(n))
		}
	}},
	{"non-ASCII names", func(l *layout) {
		for _, n := range []string{"é", "İstanbul", "ıi", "ſ", "Kelvin", "ΑΣ", "ΣΑ"} {
			l.kernel(l.userData(), n, good(n))
		}
	}},
	{"a name with a trailing newline", func(l *layout) { l.kernel(l.userData(), "nl\n", good("nl")) }},
	{"capitals in two dirs: the first wins", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernel(l.dir("a"), "Bert", good("a"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"capitals in one dir: the last in directory order wins", func(l *layout) {
		for _, n := range []string{"Bert", "bert", "BERT", "bErt"} {
			l.kernel(l.userData(), n, good(n))
		}
	}},
	{"an invalid name earlier in the path wins", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernel(l.dir("a"), "My Kernel", good("a"))
		l.kernel(l.userData(), "my kernel", good("user"))
	}},
	{"display_name null", func(l *layout) {
		l.kernel(l.userData(), "k", `{"argv": ["python3"], "display_name": null, "language": "python"}`)
	}},
	{"interrupt_mode", func(l *layout) {
		for n, m := range map[string]string{"bogus": "bogus", "upper": "SIGNAL", "msg": "Message", "null": "null"} {
			v := fmt.Sprintf("%q", m)
			if m == "null" {
				v = m
			}
			l.kernel(l.userData(), n, `{"argv": ["python3"], "display_name": "d", "language": "python", "interrupt_mode": `+v+`}`)
		}
	}},
	{"provisioners", func(l *layout) {
		for n, kp := range map[string]string{"unknown": `{"provisioner_name": "gone"}`, "local": `{"provisioner_name": "local-provisioner"}`,
			"nameless": `{"config": {}}`, "string": `"abc"`, "string-name": `"provisioner_name"`, "number": `5`, "null": `null`, "list": `["x"]`} {
			l.kernel(l.userData(), n, `{"argv": ["python3"], "display_name": "d", "language": "python", "metadata": {"kernel_provisioner": `+kp+`}}`)
		}
	}},
	{"not UTF-8", func(l *layout) {
		l.kernel(l.userData(), "latin1", "{\"argv\": [\"python3\"], \"display_name\": \"caf\xe9\", \"language\": \"python\"}")
	}},
	{"a UTF-8 byte order mark", func(l *layout) { l.kernel(l.userData(), "bom", "\ufeff"+good("bom")) }},
	{"5,000 levels of nesting", func(l *layout) {
		l.kernel(l.userData(), "deep", `{"argv": ["python3"], "x": `+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`)
		l.kernel(l.userData(), "shallow", `{"argv": ["python3"], "x": `+strings.Repeat("[", 500)+strings.Repeat("]", 500)+`}`)
	}},
	{"a 5,000-digit integer", func(l *layout) {
		l.kernel(l.userData(), "bigint", `{"argv": ["python3"], "x": `+strings.Repeat("7", 5000)+`}`)
		l.kernel(l.userData(), "bigfloat", `{"argv": ["python3"], "x": 1.`+strings.Repeat("7", 5000)+`}`)
	}},
	{"NaN and Infinity", func(l *layout) {
		l.kernel(l.userData(), "nan", `{"argv": ["python3", NaN], "display_name": "n", "env": {"A": Infinity}, "metadata": {"x": -Infinity}, "y": NaN}`)
	}},
	{"numeric kernel_protocol_version", func(l *layout) {
		l.kernel(l.userData(), "kpv", `{"argv": ["python3"], "display_name": "k", "kernel_protocol_version": 5.3}`)
	}},
	{"a resource_dir key", func(l *layout) {
		l.kernel(l.userData(), "rd", `{"argv": ["python3"], "display_name": "r", "resource_dir": "/x"}`)
	}},
	{"the top level a list", func(l *layout) { l.kernel(l.userData(), "list", `[1, 2]`) }},
	{"types traitlets accepts and refuses", func(l *layout) {
		for n, body := range map[string]string{
			"argv-string": `{"argv": "python3"}`, "argv-number": `{"argv": 5}`, "env-null": `{"argv": [], "env": null}`,
			"env-numbers": `{"argv": [], "env": {"A": 1}}`, "metadata-list": `{"argv": [], "metadata": []}`,
			"language-number": `{"argv": [], "language": 3}`, "name-key": `{"argv": [], "name": "other"}`, "empty": `{}`,
		} {
			l.kernel(l.userData(), n, body)
		}
	}},
	{"invalid JSON", func(l *layout) {
		l.kernel(l.userData(), "comma", `{"argv": ["python3"],}`)
		l.kernel(l.userData(), "single", `{'argv': ['python3']}`)
		l.kernel(l.userData(), "curly", `{“argv”: [“python3”]}`)
		l.kernel(l.userData(), "control", "{\"argv\": [\"a\tb\"]}")
		l.kernel(l.userData(), "extra", `{"argv": []} {}`)
	}},
	{"duplicate keys: the last counts", func(l *layout) {
		l.kernel(l.userData(), "dup", `{"argv": ["python3"], "display_name": null, "display_name": "ok"}`)
		l.kernel(l.userData(), "dup2", `{"argv": ["python3"], "display_name": "ok", "display_name": null}`)
	}},
	{"JUPYTER_PREFER_ENV_PATH without an env", func(l *layout) {
		l.env["JUPYTER_PREFER_ENV_PATH"] = "yes"
		l.kernel(l.userData(), "bert", good("b"))
	}},
	{"an active virtual environment", func(l *layout) {
		l.env["VIRTUAL_ENV"] = l.dir("venv")
		l.kernel(l.dir("venv", "share", "jupyter"), "venv", good("venv"))
	}},
	{"kernel fix keeps every value it does not repair", func(l *layout) {
		img := filepath.Join(l.dir("img"), "x.sif")
		testkit.Must(l.t, os.WriteFile(img, []byte("not a real image"), 0o644))
		l.fix = append(l.fix, l.kernel(l.userData(), "fixme", fmt.Sprintf(fixable, img)))
	}},
	{"a venv: its kernel against the user's", func(l *layout) {
		v := l.venv("venv")
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"a venv whose scripts name bin/python (python3 -m venv: Debian has no /usr/bin/python)", func(l *layout) {
		v := l.venv("venv")
		bin := filepath.Join(v, "bin")
		l.link("python3", filepath.Join(bin, "python"))
		body := "#!" + filepath.Join(bin, "python") + "\nimport sys\nfrom jupyter_core.command import main\nsys.exit(main())\n"
		testkit.Must(l.t, os.WriteFile(filepath.Join(bin, "jupyter"), []byte(body), 0o755))
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"a venv with JUPYTER_PREFER_ENV_PATH=0", func(l *layout) {
		v := l.venv("venv")
		l.env["JUPYTER_PREFER_ENV_PATH"] = "0"
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"a venv with JUPYTER_PREFER_ENV_PATH=yes", func(l *layout) {
		v := l.venv("venv")
		l.env["JUPYTER_PREFER_ENV_PATH"] = "yes"
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"a venv somebody else owns", func(l *layout) {
		v := l.venv("venv")
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
		l.kernel(l.userData(), "bert", good("user"))
		if os.Geteuid() == 0 {
			testkit.Must(l.t, os.Chown(v, 65534, 65534))
		}
	}},
	{"an activated VIRTUAL_ENV without its own jupyter", func(l *layout) {
		v := l.venv("venv")
		testkit.Must(l.t, os.Remove(filepath.Join(v, "bin", "jupyter")))
		l.kernel(filepath.Join(v, "share", "jupyter"), "bert", good("venv"))
	}},
	{"conda base", func(l *layout) {
		c := l.conda("conda", "base")
		l.kernel(filepath.Join(c, "share", "jupyter"), "bert", good("conda"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"a named conda env", func(l *layout) {
		c := l.conda("conda/envs/torch", "torch")
		l.kernel(filepath.Join(c, "share", "jupyter"), "bert", good("torch"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"conda activate inside a job", func(l *layout) {
		job := l.dir("tmp", "sifkernel", "jobs", "42", "jupyter")
		l.env["JUPYTER_PATH"] = job
		c := l.conda("conda/envs/torch", "torch")
		for _, d := range []string{job, filepath.Join(c, "share", "jupyter"), l.userData()} {
			l.kernel(d, "bert", good(d))
			l.kernel(d, "python3", good(d))
		}
	}},
	{"a site module sets JUPYTER_PATH", func(l *layout) {
		site := l.dir("opt", "apps", "jupyter", "share", "jupyter")
		l.env["JUPYTER_PATH"] = site
		l.kernel(site, "site-torch", good("site"))
		l.kernel(site, "bert", good("site"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"JUPYTER_DATA_DIR on scratch", func(l *layout) {
		scratch := l.dir("scratch", "u", "jupyter")
		l.env["JUPYTER_DATA_DIR"] = scratch
		l.kernel(scratch, "bert", good("scratch"))
		l.kernel(l.userData(), "bert", good("user base"))
	}},
	{"JUPYTER_PATH names one directory twice (jp1/:jp1)", func(l *layout) {
		jp := l.dir("jp1")
		l.env["JUPYTER_PATH"] = jp + "/:" + jp
		l.kernel(jp, "bert", good("jp1"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"JUPYTER_PLATFORM_DIRS", func(l *layout) {
		l.env["JUPYTER_PLATFORM_DIRS"] = "1"
		l.env["XDG_DATA_DIRS"] = l.dir("xdgdirs") + ":/usr/share/"
		l.kernel(l.dir("xdgdirs", "jupyter"), "site", good("xdg data dirs"))
		l.kernel(l.userData(), "bert", good("user"))
	}},
	{"JUPYTER_PLATFORM_DIRS with HOME a symlink", func(l *layout) {
		l.env["JUPYTER_PLATFORM_DIRS"] = "1"
		l.kernel(l.userData(), "bert", good("b"))
		l.link(l.home, filepath.Join(l.root, "homelink"))
		l.env["HOME"] = filepath.Join(l.root, "homelink")
	}},
	{"JUPYTER_PLATFORM_DIRS and blank XDG variables", func(l *layout) {
		l.env["JUPYTER_PLATFORM_DIRS"] = "1"
		l.env["XDG_DATA_HOME"] = " "
		l.env["XDG_DATA_DIRS"] = " "
		l.kernel(l.userData(), "bert", good("b"))
	}},
	{"nesting at each Python's limit", func(l *layout) {
		for _, total := range []int{989, 990, 2991, 2992, 7997, 7998, 9997, 9998} {
			n := total - 1 // the top-level object is one level
			l.kernel(l.userData(), fmt.Sprintf("depth%d", total), `{"argv": ["python3"], "x": `+strings.Repeat("[", n)+strings.Repeat("]", n)+`}`)
		}
	}},
}

// The job's kernels win under every Jupyter: the job's directory, first on
// JUPYTER_PATH as the TaskProlog puts it, against the user's, the
// environment's and the system's kernel of the same name (python3, which
// Debian's ipykernel installs in /usr/share/jupyter), with
// JUPYTER_PREFER_ENV_PATH unset, set and off, in no environment, a venv and
// a conda environment.
func init() {
	for _, prefer := range []string{"", "1", "0"} {
		for _, envKind := range []string{"none", "venv", "conda"} {
			name := fmt.Sprintf("the job's kernels win: %s, JUPYTER_PREFER_ENV_PATH=%q", envKind, prefer)
			layouts = append(layouts, struct {
				name  string
				setup func(l *layout)
			}{name, func(l *layout) {
				job := l.dir("tmp", "sifkernel", "jobs", "7", "jupyter")
				l.env["JUPYTER_PATH"] = job
				if prefer != "" {
					l.env["JUPYTER_PREFER_ENV_PATH"] = prefer
				}
				dirs := []string{job, l.userData()}
				switch envKind {
				case "venv":
					dirs = append(dirs, filepath.Join(l.venv("venv"), "share", "jupyter"))
				case "conda":
					dirs = append(dirs, filepath.Join(l.conda("conda/envs/x", "x"), "share", "jupyter"))
				}
				for _, d := range dirs {
					l.kernel(d, "python3", good(d))
					l.kernel(d, "bert", good(d))
				}
				l.wantWinner = map[string]string{"python3": filepath.Join(job, "kernels", "python3"), "bert": filepath.Join(job, "kernels", "bert")}
			}})
		}
	}
}

// intended are the layouts where sifkernel knowingly differs from one
// Debian release's Jupyter, and why; an entry that no longer differs fails.
var intended = map[string]map[string]string{
	"debian12": {},
	"debian13": {},
}

// A side is one Debian release's Jupyter.
type side struct {
	name   string
	root   string // "" for this machine; else the chroot the layouts are bound into
	core   int    // the jupyter_core major sifkernel must detect there
	python string // and the Python
}

// debian13Root is the chroot testcluster/debian13/build makes.
func debian13Root() string {
	if r := os.Getenv("SIFKERNEL_DEBIAN13_ROOT"); r != "" {
		return r
	}
	return "/var/cache/sifkernel/debian13"
}

// jupyterView is what one side says.
type jupyterView struct {
	Dirs   []string          `json:"dirs"`
	Found  map[string]string `json:"found"`
	Loaded []string          `json:"loaded"`
	Model  struct {
		Core   string `json:"jupyter_core"`
		Python string `json:"python"`
		Prefix string `json:"sys_prefix"`
		Why    string `json:"why"`
	} `json:"model"`
	// Self lists kernel directories sifkernel reports as shadowed by the
	// very directory they are, or twice: Jupyter lists each once.
	Self  []string `json:"self"`
	Fixes []struct {
		File  string   `json:"file"`
		Lost  []string `json:"lost"`
		Order bool     `json:"order"`
		Error string   `json:"error"`
	} `json:"fixes"`
}

// TestMain runs as sifkernel's side of the differential test when asked:
// in the layout's environment and directory, inside the side's file system.
func TestMain(m *testing.M) {
	if os.Getenv("SIFKERNEL_DIFF_CHILD") == "1" {
		me, err := user.Current()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := json.NewEncoder(os.Stdout).Encode(ourView(Env{Home: me.HomeDir})); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestJupyterDifferential(t *testing.T) {
	sides := []side{{name: "debian12", core: 4, python: "3.11"}, {name: "debian13", root: debian13Root(), core: 5, python: "3.13"}}
	if len(layouts) < 60 {
		t.Fatalf("only %d layouts", len(layouts))
	}
	exe, err := os.Executable()
	testkit.Must(t, err)
	for _, sd := range sides {
		t.Run(sd.name, func(t *testing.T) {
			if err := sd.ready(); err != nil {
				testkit.Skip(t, err.Error())
			}
			if sd.root != "" {
				t.Cleanup(func() { removeEmptyDirs(filepath.Join(sd.root, os.TempDir())) })
			}
			type run struct {
				l            *layout
				ours, theirs jupyterView
				errs         []error
				fixes        [][3]any
			}
			runs := make([]*run, len(layouts))
			for i, lay := range layouts {
				root := t.TempDir()
				l := &layout{t: t, root: root, home: filepath.Join(root, "home"), env: map[string]string{"PATH": "/usr/bin:/bin"}}
				testkit.Must(t, os.MkdirAll(l.home, 0o755))
				l.cwd = l.dir("somewhere")
				l.env["HOME"] = l.home
				lay.setup(l)
				runs[i] = &run{l: l}
				env := Env{Home: "/root", LookupEnv: func(k string) (string, bool) { v, ok := l.env[k]; return v, ok },
					Jupyter: &Jupyter{Core: Version{sd.core, -1, -1}, Python: Version{3, 11, -1}}}
				runs[i].fixes = runFixes(t, l, env)
			}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			for _, r := range runs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					var e1, e2 error
					r.theirs, e1 = sd.jupyterSees(r.l, r.fixes)
					r.ours, e2 = sd.sifkernelSees(r.l, exe)
					r.errs = []error{e1, e2}
				}()
			}
			wg.Wait()
			for i, lay := range layouts {
				r := runs[i]
				t.Run(lay.name, func(t *testing.T) {
					if err := errors.Join(r.errs...); err != nil {
						t.Fatal(err)
					}
					if got := r.theirs.Model; !strings.HasPrefix(got.Core, fmt.Sprint(sd.core, ".")) || got.Python != sd.python {
						t.Fatalf("the Jupyter run is jupyter_core %s on Python %s, not the %s one", got.Core, got.Python, sd.name)
					}
					diff := compare(r.ours, r.theirs)
					why, listed := intended[sd.name][lay.name]
					switch {
					case diff != "" && !listed:
						t.Errorf("sifkernel and jupyter_client disagree:\n%s", diff)
					case diff == "" && listed:
						t.Errorf("listed as an intended difference (%s), but they agree: drop the row", why)
					case listed:
						t.Logf("intended difference (%s):\n%s", why, diff)
					}
					for name, dir := range r.l.wantWinner {
						for who, v := range map[string]jupyterView{"sifkernel": r.ours, "jupyter": r.theirs} {
							if v.Found[name] != dir {
								t.Errorf("%s: %q resolves to %q, want the job's %q", who, name, v.Found[name], dir)
							}
						}
					}
					for _, f := range r.theirs.Fixes {
						if f.Error != "" || len(f.Lost) > 0 || !f.Order {
							t.Errorf("kernel fix of %s: Python: error %q, values lost %v, key order kept %v", f.File, f.Error, f.Lost, f.Order)
						}
					}
				})
			}
		})
	}
}

// ready says why a side cannot run here, if it cannot.
func (sd side) ready() error {
	if sd.root == "" {
		if err := exec.Command("/usr/bin/python3", "-c", "import jupyter_client").Run(); err != nil {
			return fmt.Errorf("Debian's python3-jupyter-client is not installed here")
		}
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the Debian 13 side needs root (a chroot and bind mounts)")
	}
	if _, err := os.Stat(filepath.Join(sd.root, ".sifkernel-stamp")); err != nil {
		return fmt.Errorf("no Debian 13 chroot at %s: run testcluster/debian13/build", sd.root)
	}
	return nil
}

// command runs argv in the layout's environment and working directory,
// inside the side's file system: for a chroot, in a private mount namespace
// with the layout's directory (and bind, if given) bound in at the same
// paths, so both sides see the same names.
func (sd side) command(l *layout, bind string, env []string, argv ...string) *exec.Cmd {
	if sd.root == "" {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = l.cwd, env
		return cmd
	}
	const script = `r=$1 lay=$2 bin=$3 cwd=$4; shift 4
for d in "$lay" $bin; do mkdir -p "$r$d" && mount --bind "$d" "$r$d" || exit 125; done
exec chroot "$r" /usr/bin/env -i -C "$cwd" "$@"`
	args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", sd.root, l.root, bind, l.cwd}, env...)
	return exec.Command("unshare", append(args, argv...)...)
}

func (l *layout) environ(extra ...string) []string {
	var env []string
	for k, v := range l.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return append(env, extra...)
}

// jupyterSees runs the driver with the Python of the jupyter the layout's
// PATH finds (the first line of that script names it).
func (sd side) jupyterSees(l *layout, fixes [][3]any) (jupyterView, error) {
	var v jupyterView
	py := ""
	for _, dir := range strings.Split(l.env["PATH"], ":") {
		in := sd.root + dir
		if strings.HasPrefix(dir, l.root+"/") {
			in = dir // bound in at the same path
		}
		head, err := os.ReadFile(filepath.Join(in, "jupyter"))
		if err == nil && bytes.HasPrefix(head, []byte("#!")) {
			line, _, _ := bytes.Cut(head[2:], []byte("\n"))
			py = strings.TrimSpace(string(line))
			break
		}
	}
	if py == "" {
		return v, fmt.Errorf("no jupyter on PATH %q in %s", l.env["PATH"], sd.name)
	}
	arg, _ := json.Marshal(fixes)
	if fixes == nil {
		arg = []byte("[]")
	}
	return v, run(sd.command(l, "", l.environ(), py, "-c", pyDriver, string(arg)), &v)
}

// sifkernelSees runs this test binary as sifkernel's side (see TestMain).
func (sd side) sifkernelSees(l *layout, exe string) (jupyterView, error) {
	var v jupyterView
	return v, run(sd.command(l, filepath.Dir(exe), l.environ("SIFKERNEL_DIFF_CHILD=1"), exe), &v)
}

func run(cmd *exec.Cmd, v *jupyterView) error {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(cmd.Args[0]), err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("reading the answer of %s: %v\n%s", cmd.Args[0], err, out)
	}
	return nil
}

// removeEmptyDirs removes the mount points left in the chroot: empty
// directories only, so nothing is lost should a mount still be there.
func removeEmptyDirs(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, en := range ents {
		if en.IsDir() && en.Type()&os.ModeSymlink == 0 {
			removeEmptyDirs(filepath.Join(dir, en.Name()))
		}
	}
	_ = os.Remove(dir) // only once empty: the point of the walk
}

// ourView is what sifkernel says, in jupyter_client's terms.
func ourView(env Env) jupyterView {
	env = env.WithModel()
	v := jupyterView{Found: map[string]string{}, Loaded: []string{}}
	j := env.Model()
	v.Model.Core, v.Model.Python, v.Model.Prefix, v.Model.Why = j.Core.String(), j.Python.String(), j.Prefix, j.Why
	for _, d := range env.SearchPath() {
		v.Dirs = append(v.Dirs, d.Kernels())
	}
	seen := map[string]bool{}
	for _, e := range env.Kernels() {
		if seen[e.Dir] {
			v.Self = append(v.Self, e.Dir+" (twice)")
		}
		seen[e.Dir] = true
		if e.ShadowedBy != "" && sameDir(e.ShadowedBy, e.Dir) {
			v.Self = append(v.Self, e.Dir+" (shadowed by "+e.ShadowedBy+")")
		}
		if e.Ignored != "" || e.ShadowedBy != "" {
			continue
		}
		key := PyLower(e.Name)
		v.Found[key] = e.Dir
		if e.LoadErr == nil {
			v.Loaded = append(v.Loaded, key)
		}
	}
	sort.Strings(v.Loaded)
	return v
}

// runFixes runs kernel fix on the layout's fix kernels, writing each result
// beside the original (in a copy of its directory), and says what changed.
func runFixes(t *testing.T, l *layout, env Env) [][3]any {
	var out [][3]any
	for _, dir := range l.fix {
		k := Load(dir)
		rep, err := PlanFix(k, FixOptions{Checker: Checker{Env: env, GPUFlag: "--nv", Runtime: &apptainer.Runtime{Path: "/bin/true", Version: "1.5.3"}}})
		if err != nil {
			t.Fatalf("fix %s: %v", dir, err)
		}
		fixed := filepath.Join(l.root, "fixed", filepath.Base(dir)) // outside the search path
		testkit.Must(t, os.MkdirAll(fixed, 0o755))
		if err := os.WriteFile(filepath.Join(fixed, FileName), rep.After, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, [3]any{k.File(), filepath.Join(fixed, FileName), []string{"argv", "metadata"}})
	}
	return out
}

// compare lists the disagreements: the model, search dirs, winners,
// loadable kernels, and any kernel sifkernel reports against itself.
// Debian's own /usr/share/jupyter kernels are seen by both and compared too.
func compare(ours, theirs jupyterView) string {
	var b strings.Builder
	if o, t := ours.Model, theirs.Model; o.Core != t.Core || o.Python != t.Python || o.Prefix != t.Prefix {
		fmt.Fprintf(&b, "  model: sifkernel jupyter_core %s, Python %s, sys.prefix %q (%s)\n         jupyter   jupyter_core %s, Python %s, sys.prefix %q\n",
			o.Core, o.Python, o.Prefix, o.Why, t.Core, t.Python, t.Prefix)
	}
	if !slices.Equal(ours.Dirs, theirs.Dirs) {
		fmt.Fprintf(&b, "  kernel dirs:\n    sifkernel %q\n    jupyter   %q\n", ours.Dirs, theirs.Dirs)
	}
	names := map[string]bool{}
	for k := range ours.Found {
		names[k] = true
	}
	for k := range theirs.Found {
		names[k] = true
	}
	var keys []string
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ours.Found[k] != theirs.Found[k] {
			fmt.Fprintf(&b, "  %q: sifkernel %q, jupyter %q\n", k, ours.Found[k], theirs.Found[k])
		}
	}
	if !slices.Equal(ours.Loaded, theirs.Loaded) {
		fmt.Fprintf(&b, "  loadable:\n    sifkernel %q\n    jupyter   %q\n", ours.Loaded, theirs.Loaded)
	}
	for _, s := range ours.Self {
		fmt.Fprintf(&b, "  sifkernel reports a kernel against itself: %s\n", s)
	}
	return b.String()
}
