package kernelspec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func mkKernel(t testing.TB, kernels, name, body string) string {
	t.Helper()
	dir := filepath.Join(kernels, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"bert": true, "py3.11_gpu-x": true, "0": true,
		"": false, ".": false, "..": false, "a/b": false, "../x": false, "Bert": false, "a b": false, "é": false,
	} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	if err := ValidName("Bert"); err == nil || !strings.Contains(err.Error(), `try "bert"`) {
		t.Errorf("ValidName(Bert) should suggest the lower-case name, got %v", err)
	}
}

func TestSearchPath(t *testing.T) {
	own := t.TempDir() // a prefix this user owns
	other := "/"       // one somebody else owns
	if os.Geteuid() == 0 {
		other = t.TempDir()
		testkit.Must(t, os.Chown(other, 65534, 65534))
	}
	v4 := Jupyter{Core: Version{4, 12, 0}, Python: Version{3, 11, -1}}
	v5 := func(prefix, base string) Jupyter {
		return Jupyter{Core: Version{5, 7, 2}, Python: Version{3, 13, -1}, Prefix: prefix, BasePrefix: base}
	}
	sys := []string{"/usr/local/share/jupyter", "/usr/share/jupyter"}
	tests := []struct {
		name string
		j    Jupyter
		env  map[string]string
		want []string
	}{
		{name: "defaults", j: v4, want: []string{"/home/u/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		// As jupyter_core: trailing slashes dropped, nothing de-duplicated.
		{name: "JUPYTER_PATH first", j: v4, env: map[string]string{"JUPYTER_PATH": "/job/jupyter:/x/:/usr/share/jupyter"},
			want: []string{"/job/jupyter", "/x", "/usr/share/jupyter", "/home/u/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		{name: "an empty JUPYTER_PATH entry is the working directory", j: v4, env: map[string]string{"JUPYTER_PATH": ":/a"},
			want: []string{"", "/a", "/home/u/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		// The Python user base stays when the data dir moves.
		{name: "JUPYTER_DATA_DIR beats XDG", j: v4, env: map[string]string{"JUPYTER_DATA_DIR": "/d", "XDG_DATA_HOME": "/xdg"},
			want: []string{"/d", "/home/u/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		{name: "4: a venv comes after the user", j: Jupyter{Core: Version{4, 12, 0}, Prefix: "/venv", BasePrefix: "/usr"}, env: map[string]string{"XDG_DATA_HOME": "/xdg"},
			want: []string{"/xdg/jupyter", "/home/u/.local/share/jupyter", "/venv/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		{name: "4: JUPYTER_PREFER_ENV_PATH", j: Jupyter{Core: Version{4, 12, 0}, Prefix: "/venv", BasePrefix: "/usr"}, env: map[string]string{"JUPYTER_PREFER_ENV_PATH": "1", "PYTHONNOUSERSITE": "1"},
			want: []string{"/venv/share/jupyter", "/home/u/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"}},
		{name: "5: a venv the user owns comes first", j: v5(own, "/usr"),
			want: append([]string{own + "/share/jupyter", "/home/u/.local/share/jupyter"}, sys...)},
		{name: "5: a venv someone else owns does not", j: v5(other, "/usr"), env: map[string]string{"PYTHONNOUSERSITE": "1"},
			want: append([]string{"/home/u/.local/share/jupyter", pathlibStr(other + "/share/jupyter")}, sys...)},
		{name: "5: JUPYTER_PREFER_ENV_PATH=0 keeps the user first", j: v5(own, "/usr"), env: map[string]string{"JUPYTER_PREFER_ENV_PATH": "0", "PYTHONNOUSERSITE": "1"},
			want: append([]string{"/home/u/.local/share/jupyter", own + "/share/jupyter"}, sys...)},
		{name: "5: conda base is not preferred", j: v5(own, own), env: map[string]string{"CONDA_PREFIX": own, "CONDA_DEFAULT_ENV": "base", "PYTHONNOUSERSITE": "1"},
			want: append([]string{"/home/u/.local/share/jupyter", own + "/share/jupyter"}, sys...)},
		{name: "5: a named conda env is", j: v5(own, own), env: map[string]string{"CONDA_PREFIX": own, "CONDA_DEFAULT_ENV": "torch", "PYTHONNOUSERSITE": "1"},
			want: append([]string{own + "/share/jupyter", "/home/u/.local/share/jupyter"}, sys...)},
		{name: "5: CONDA_DEFAULT_ENV unset means base", j: v5(own, own), env: map[string]string{"CONDA_PREFIX": own, "PYTHONNOUSERSITE": "1"},
			want: append([]string{"/home/u/.local/share/jupyter", own + "/share/jupyter"}, sys...)},
		{name: "5: JUPYTER_PLATFORM_DIRS", j: v5("", ""), env: map[string]string{"JUPYTER_PLATFORM_DIRS": "1", "XDG_DATA_DIRS": "/site/share:/usr/share/", "PYTHONNOUSERSITE": "1"},
			want: []string{"/home/u/.local/share/jupyter", "/site/share/jupyter", "/usr/share/jupyter"}},
		{name: "4: JUPYTER_PLATFORM_DIRS means nothing", j: v4, env: map[string]string{"JUPYTER_PLATFORM_DIRS": "1", "XDG_DATA_DIRS": "/site/share", "PYTHONNOUSERSITE": "1"},
			want: append([]string{"/home/u/.local/share/jupyter"}, sys...)},
		{name: "5: a venv without system site packages has no user base", j: Jupyter{Core: Version{5, 7, 2}, Prefix: other, BasePrefix: "/usr", NoUserSite: true},
			env: map[string]string{"PYTHONUSERBASE": "/ub"}, want: append([]string{"/home/u/.local/share/jupyter", pathlibStr(other + "/share/jupyter")}, sys...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Env{Home: "/home/u", Getenv: func(k string) string { return tt.env[k] }, Jupyter: &tt.j}
			var got []string
			for _, d := range e.SearchPath() {
				if d.Origin != "ipython" {
					got = append(got, d.Path)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SearchPath() = %v, want %v", got, tt.want)
			}
		})
	}
	e := Env{Home: "/home/u", Getenv: func(k string) string { return map[string]string{"JUPYTER_RUNTIME_DIR": "/run/user/7/jupyter"}[k] }}
	if e.RuntimeDir() != "/run/user/7/jupyter" || (Env{Home: "/h", Getenv: func(string) string { return "" }}).RuntimeDir() != "/h/.local/share/jupyter/runtime" {
		t.Error("RuntimeDir does not follow JUPYTER_RUNTIME_DIR, else <data dir>/runtime")
	}
}

func TestDiscoverShadowing(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mkKernel(t, filepath.Join(a, "kernels"), "bert", `{"argv":["x","{connection_file}"],"display_name":"A"}`)
	mkKernel(t, filepath.Join(b, "kernels"), "bert", `{"argv":["y","{connection_file}"],"display_name":"B"}`)
	mkKernel(t, filepath.Join(b, "kernels"), "other", `{"argv":["z","{connection_file}"],"display_name":"O"}`)
	testkit.Must(t, os.MkdirAll(filepath.Join(b, "kernels", "empty"), 0o755)) // no kernel.json: not a kernel
	got := Discover([]Dir{{Path: a}, {Path: b}})
	if len(got) != 3 {
		t.Fatalf("Discover found %d kernels, want 3", len(got))
	}
	if got[0].Spec.DisplayName != "A" || got[0].ShadowedBy != "" {
		t.Errorf("first bert = %+v", got[0])
	}
	if got[1].Spec.DisplayName != "B" || got[1].ShadowedBy != filepath.Join(a, "kernels", "bert") {
		t.Errorf("second bert should be shadowed by the first: %+v", got[1])
	}
	if n := len(Find(got, "BERT")); n != 2 {
		t.Errorf("Find(BERT) = %d entries, want 2", n)
	}
}

func TestSpecPreservesUnknownFields(t *testing.T) {
	in := `{"argv":["a","{connection_file}"],"display_name":"<X>","language":"python","future_field":{"k":[1,2]},
	"metadata":{"debugger":true,"sifkernel":{"image":"/i.sif","gpu":"auto","later":"kept"}}}`
	s, err := Parse("k.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSifkernel(Meta{Image: "/j.sif", GPU: GPUNever}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, out)
	s2, err := Parse("k.json", out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := s2.Encode()
	if string(out) != string(out2) {
		t.Error("encode -> parse -> encode is not stable")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, body string
		line, col  int
		curly      bool
		want       string
	}{
		{name: "curly", body: "{\n  “argv”: [\"a\"]\n}", line: 2, col: 3, curly: true},
		{name: "trailing comma", body: "{\n\"argv\": [\"a\",],\n}", line: 2, col: 14},
		{name: "not an object", body: `[1]`, line: 1, col: 1, want: "must be an object"},
		{name: "wrong type", body: `{"argv": "python"}`, want: `field "argv" must be a list of strings`},
		{name: "env not strings", body: `{"argv": [], "env": {"A": 1}}`, want: `field "env"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/k/kernel.json", []byte(tt.body))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !strings.Contains(err.Error(), "/k/kernel.json") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name the file and say %q", err, tt.want)
			}
			var syn *SyntaxError
			if tt.line == 0 {
				return
			}
			if !errors.As(err, &syn) {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			if syn.Line != tt.line || syn.Column != tt.col || syn.Curly != tt.curly {
				t.Errorf("at %d:%d curly=%v, want %d:%d curly=%v", syn.Line, syn.Column, syn.Curly, tt.line, tt.col, tt.curly)
			}
		})
	}
}

func TestRepairQuotes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{“argv”: [“python”, "-f"]}`, `{"argv": ["python", "-f"]}`},
		{`{"display_name": "He said “hi”"}`, `{"display_name": "He said “hi”"}`},
		{`{‘a’: ‘b’}`, `{"a": "b"}`},
		{`{“name”: “it’s”}`, `{"name": "it’s"}`},
		{`{"a": "x\"“"}`, `{"a": "x\"“"}`},
	}
	for _, tt := range tests {
		got, _, changed := RepairQuotes([]byte(tt.in))
		if string(got) != tt.want {
			t.Errorf("RepairQuotes(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if changed != (tt.in != tt.want) {
			t.Errorf("RepairQuotes(%s) changed = %v", tt.in, changed)
		}
		if json.Valid([]byte(tt.want)) != true {
			t.Errorf("want %s is not valid JSON", tt.want)
		}
	}
}

func TestLoadRefusesHugeAndOddFiles(t *testing.T) {
	kernels := t.TempDir()
	huge := mkKernel(t, kernels, "huge", `{"argv":["`+strings.Repeat("x", MaxFileSize)+`"]}`)
	dir := filepath.Join(kernels, "dir")
	testkit.Must(t, os.MkdirAll(filepath.Join(dir, FileName), 0o755))
	loop := filepath.Join(kernels, "loop")
	testkit.Must(t, os.MkdirAll(loop, 0o755))
	testkit.Must(t, os.Symlink(FileName, filepath.Join(loop, FileName)))
	for _, d := range []string{huge, dir, loop} {
		k := Load(d)
		if k.Err == nil || !strings.Contains(k.Err.Error(), filepath.Join(d, FileName)) {
			t.Errorf("Load(%s) error = %v, want one naming the file", d, k.Err)
		}
	}
}
