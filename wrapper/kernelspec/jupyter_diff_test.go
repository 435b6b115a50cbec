package kernelspec

import (
	"bytes"
	"encoding/json"
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
// environment; Debian's /usr/bin/python3 with jupyter_client says which
// kernel directories it searches, which kernel wins each name and which
// load, and sifkernel must say the same, except where the table of intended
// differences says why not.

// pyDriver prints what jupyter_client sees, and checks fixed files.
const pyDriver = `
import json, logging, os, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
from jupyter_client.kernelspec import KernelSpecManager, KernelSpec
m = KernelSpecManager()
out = {"dirs": list(m.kernel_dirs), "found": m.find_kernel_specs(), "loaded": sorted(m.get_all_specs())}
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
		l.kernelWith(l.dir("a"), "k", func(f string) { os.Mkdir(f, 0o755) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"/dev/null as kernel.json does not shadow", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { l.link("/dev/null", f) })
		l.kernel(l.userData(), "k", good("user"))
	}},
	{"a FIFO as kernel.json does not shadow and does not hang", func(l *layout) {
		l.env["JUPYTER_PATH"] = l.dir("a")
		l.kernelWith(l.dir("a"), "k", func(f string) { syscall.Mkfifo(f, 0o644) })
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
}

// intended are the layouts where sifkernel knowingly differs, and why.
var intended = map[string]string{
	// sifkernel runs outside the environment Jupyter runs in, so it takes an
	// active VIRTUAL_ENV or CONDA_PREFIX for Jupyter's sys.prefix. The
	// Jupyter under test is Debian's /usr/bin/python3 (sys.prefix /usr).
	"an active virtual environment": "sys.prefix is guessed from VIRTUAL_ENV",
}

// jupyterView is what one side says.
type jupyterView struct {
	Dirs   []string          `json:"dirs"`
	Found  map[string]string `json:"found"`
	Loaded []string          `json:"loaded"`
	Fixes  []struct {
		File  string   `json:"file"`
		Lost  []string `json:"lost"`
		Order bool     `json:"order"`
		Error string   `json:"error"`
	} `json:"fixes"`
}

func TestJupyterDifferential(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		testkit.Skip(t, "no /usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import jupyter_client").Run(); err != nil {
		testkit.Skip(t, "Debian's python3-jupyter-client is not installed")
	}
	if len(layouts) < 40 {
		t.Fatalf("only %d layouts", len(layouts))
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		l     *layout
		ours  jupyterView
		fixes [][3]any
	}
	runs := make([]run, len(layouts))
	for i, lay := range layouts {
		root := t.TempDir()
		l := &layout{t: t, root: root, home: filepath.Join(root, "home"), env: map[string]string{}}
		testkit.Must(t, os.MkdirAll(l.home, 0o755))
		l.cwd = l.dir("somewhere")
		l.env["HOME"] = l.home
		lay.setup(l)
		t.Chdir(l.cwd)
		env := Env{Home: me.HomeDir, LookupEnv: func(k string) (string, bool) { v, ok := l.env[k]; return v, ok }}
		runs[i] = run{l: l, ours: ourView(env)}
		runs[i].fixes = runFixes(t, l, env)
	}
	var wg sync.WaitGroup
	theirs := make([]jupyterView, len(layouts))
	errs := make([]error, len(layouts))
	sem := make(chan struct{}, 4)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			theirs[i], errs[i] = jupyterSees(runs[i].l, runs[i].fixes)
		}()
	}
	wg.Wait()
	for i, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			diff := compare(runs[i].ours, theirs[i])
			why, listed := intended[lay.name]
			switch {
			case diff != "" && !listed:
				t.Errorf("sifkernel and jupyter_client disagree:\n%s", diff)
			case diff == "" && listed:
				t.Errorf("listed as an intended difference (%s), but they agree: drop the row", why)
			case listed:
				t.Logf("intended difference (%s):\n%s", why, diff)
			}
			for _, f := range theirs[i].Fixes {
				if f.Error != "" || len(f.Lost) > 0 || !f.Order {
					t.Errorf("kernel fix of %s: Python: error %q, values lost %v, key order kept %v", f.File, f.Error, f.Lost, f.Order)
				}
			}
		})
	}
}

// ourView is what sifkernel says, in jupyter_client's terms.
func ourView(env Env) jupyterView {
	v := jupyterView{Found: map[string]string{}, Loaded: []string{}}
	dirs := env.SearchPath()
	for _, d := range dirs {
		v.Dirs = append(v.Dirs, d.Kernels())
	}
	for _, e := range Discover(dirs) {
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

// jupyterSees runs the driver in the layout's environment and directory.
func jupyterSees(l *layout, fixes [][3]any) (jupyterView, error) {
	var v jupyterView
	arg, _ := json.Marshal(fixes)
	if fixes == nil {
		arg = []byte("[]")
	}
	cmd := exec.Command("/usr/bin/python3", "-c", pyDriver, string(arg))
	cmd.Dir = l.cwd
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, val := range l.env {
		cmd.Env = append(cmd.Env, k+"="+val)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return v, fmt.Errorf("python: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("reading python's answer: %v\n%s", err, out)
	}
	return v, nil
}

// compare lists the disagreements: search dirs, winners, loadable kernels.
// Debian's own /usr/share/jupyter kernels are seen by both and compared too.
func compare(ours, theirs jupyterView) string {
	var b strings.Builder
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
	return b.String()
}
