package kernelspec

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// fixture is a home directory with a data dir, an Apptainer and images.
type fixture struct {
	home, kernels, runtime, image, corrupt string
	checker                                Checker
}

func newFixture(t testing.TB, env map[string]string) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{home: filepath.Join(root, "home/u")}
	f.kernels = filepath.Join(f.home, ".local/share/jupyter/kernels")
	f.runtime = filepath.Join(root, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	testkit.Must(t, os.MkdirAll(filepath.Dir(f.runtime), 0o755))
	testkit.Must(t, os.WriteFile(f.runtime, []byte("#!/bin/sh\necho apptainer version 1.4.1\n"), 0o755))
	testkit.Must(t, os.MkdirAll(f.kernels, 0o755))
	f.image = filepath.Join(root, "scratch/bert.sif")
	testkit.Must(t, os.MkdirAll(filepath.Dir(f.image), 0o755))
	if err := sifimage.Build(f.image, bytes.NewReader(sifimage.Minimal)); err != nil {
		t.Fatal(err)
	}
	data := testkit.ReadFile(t, f.image)
	f.corrupt = filepath.Join(root, "scratch/truncated.sif")
	testkit.Must(t, os.WriteFile(f.corrupt, data[:len(data)/2], 0o644))
	f.checker = Checker{
		Env:      Env{Home: f.home, Getenv: func(k string) string { return env[k] }},
		Runtime:  &apptainer.Runtime{Path: f.runtime, Version: "1.4.1"},
		GPUFlag:  "--nv",
		LookPath: func(n string) (string, error) { return "", os.ErrNotExist },
	}
	return f
}

func (f *fixture) check(t *testing.T, name, body string) []Finding {
	t.Helper()
	mkKernel(t, f.kernels, name, body)
	for _, e := range Discover(f.checker.Env.SearchPath()) {
		if e.Name == name {
			return f.checker.Check(e)
		}
	}
	t.Fatalf("kernel %s not discovered", name)
	return nil
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Severity)+":"+f.Code)
	}
	return out
}

func TestCheck(t *testing.T) {
	f := newFixture(t, map[string]string{"JUPYTER_RUNTIME_DIR": "/run/user/1000/jupyter"})
	kj := func(argv ...string) string {
		b, _ := (&Spec{Argv: argv, DisplayName: "K", Language: "python"}).Encode()
		return string(b)
	}
	py := []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}
	tacc := append([]string{"/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "--bind", "/run/user:/run/user", f.image}, py...)
	good := append([]string{f.runtime, "exec", "--bind", "/run/user", "--env", "PYTHONNOUSERSITE=1", f.image}, py...)
	with := func(image string, extra ...string) []string {
		a := append([]string{f.runtime, "exec"}, extra...)
		a = append(a, "--bind", "/run/user", "--env", "PYTHONNOUSERSITE=1", image)
		return append(a, py...)
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{name: "good", body: kj(good...), want: nil},
		{name: "tacc", body: kj(tacc...), want: []string{"error:stale-apptainer", "warning:nv-hardcoded", "info:user-site"}},
		{name: "curly", body: "{\n “argv”: [\"a\"]}", want: []string{"error:json-curly-quotes", "warning:display-name", "error:connection-file", "warning:argv0"}},
		{name: "broken", body: "{\"argv\": [\"a\"", want: []string{"error:json"}},
		{name: "schema", body: `{"argv": "python3"}`, want: []string{"error:schema"}},
		{name: "no-connection-file", body: kj(good[:len(good)-1]...), want: []string{"error:connection-file"}},
		{name: "missing-image", body: kj(with("/scratch/gone.sif")...), want: []string{"error:image-missing"}},
		{name: "corrupt-image", body: kj(with(f.corrupt)...), want: []string{"error:image-corrupt"}},
		{name: "image-under-a-file", body: kj(with(f.image + "/x")...), want: []string{"error:image-unreadable"}},
		{name: "remote-image", body: kj(with("docker://python:3.11")...), want: []string{"info:image-remote"}},
		{name: "not-sif", body: kj(with(f.runtime)...), want: []string{"warning:image-format"}},
		{name: "nv-always", body: `{"argv":` + jsonList(with(f.image, "--nv")) + `,"display_name":"K","language":"python","metadata":{"sifkernel":{"gpu":"always"}}}`, want: nil},
		{name: "unknown-flag", body: kj(with(f.image, "--sparkle")...), want: []string{"warning:unknown-flag"}},
		{name: "no-bind", body: kj(append([]string{f.runtime, "exec", "--env", "PYTHONNOUSERSITE=1", f.image}, py...)...), want: []string{"error:connection-dir"}},
		{name: "bad-verb", body: kj(append([]string{f.runtime, "shell", f.image}, py...)...), want: []string{"error:container-argv"}},
		{name: "Caps", body: kj(good...), want: []string{"warning:name"}},
		{name: "relative-argv0", body: kj(py...), want: []string{"warning:argv0"}},
		{name: "empty-argv", body: `{"argv": [], "display_name": "x"}`, want: []string{"error:argv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.check(t, tt.name, tt.body)
			assertRules(t, got)
			if !slices.Equal(codes(got), tt.want) {
				t.Errorf("findings %v, want %v\n%v", codes(got), tt.want, got)
			}
			for _, g := range got {
				if !strings.HasSuffix(g.File, filepath.Join(tt.name, FileName)) || g.Message == "" {
					t.Errorf("finding %+v does not name the file or says nothing", g)
				}
			}
		})
	}
}

func jsonList(a []string) string {
	b, _ := marshal(a)
	return string(b)
}

func TestCheckCurlyPosition(t *testing.T) {
	f := newFixture(t, nil)
	got := f.check(t, "curly", "{\n  \"argv\": [“python3”]\n}\n")
	if len(got) != 4 || got[3].Code != "argv0" || got[0].Line != 2 || got[0].Column != 12 || !got[0].Fixable || !strings.Contains(got[0].Hint, "kernel fix curly") {
		t.Errorf("curly finding = %+v, want line 2 column 12, fixable, with a hint", got)
	}
}

func TestCheckShadowed(t *testing.T) {
	f := newFixture(t, nil)
	other := filepath.Join(t.TempDir(), "jp")
	mkKernel(t, filepath.Join(other, "kernels"), "dup", `{"argv":["a","{connection_file}"],"display_name":"first"}`)
	f.checker.Env.Getenv = func(k string) string { return map[string]string{"JUPYTER_PATH": other}[k] }
	mkKernel(t, f.kernels, "dup", `{"argv":["a","{connection_file}"],"display_name":"second"}`)
	var shadowed []string
	for _, e := range Find(Discover(f.checker.Env.SearchPath()), "dup") {
		shadowed = append(shadowed, strings.Join(codes(f.checker.Check(e)), ","))
	}
	if !slices.Equal(shadowed, []string{"warning:argv0", "warning:shadowed,warning:argv0"}) {
		t.Errorf("findings %q, want the second dup shadowed", shadowed)
	}
}

func TestFixTACC(t *testing.T) {
	f := newFixture(t, map[string]string{"JUPYTER_RUNTIME_DIR": "/run/user/1000/jupyter"})
	orig := `{
 "argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "` + f.image + `",
          "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "BERT (GPU)", "language": "python", "x-portal": {"queue": "rtx-dev"}
}
`
	dir := mkKernel(t, f.kernels, "bert", orig)
	rep, err := PlanFix(Load(dir), FixOptions{Checker: f.checker})
	if err != nil {
		t.Fatal(err)
	}
	diff := rep.Diff()
	for _, w := range []string{"- \"argv\"", "+    \"" + f.runtime + "\"", "+    \"--bind\"", `"gpu": "auto"`} {
		if !strings.Contains(diff, w) {
			t.Errorf("diff lacks %q:\n%s", w, diff)
		}
	}
	if len(rep.Changes) != 3 {
		t.Errorf("changes %q, want argv[0], --nv and the bind", rep.Changes)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	backup, err := rep.Apply(now)
	if err != nil {
		t.Fatal(err)
	}
	if b := testkit.ReadFile(t, backup); string(b) != orig || !strings.HasSuffix(backup, ".bak-20261125T120000Z") {
		t.Errorf("backup %s does not hold the original", backup)
	}
	k := Load(dir)
	if k.Err != nil {
		t.Fatal(k.Err)
	}
	if got := f.checker.Check(Entry{Kernel: k}); slices.ContainsFunc(got, func(x Finding) bool { return x.Severity == Error }) {
		t.Errorf("fixed kernel still has errors: %v", got)
	}
	if _, ok := k.Spec.Extra["x-portal"]; !ok {
		t.Error("fix dropped an unknown field")
	}
	if st, _ := os.Stat(k.File()); st.Mode().Perm() != FileMode {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), os.FileMode(FileMode))
	}
	if _, err := PlanFix(k, FixOptions{Checker: f.checker}); err != ErrNothingToFix {
		t.Errorf("second PlanFix = %v, want ErrNothingToFix", err)
	}
}

func TestFixKeepsOriginalOnConflict(t *testing.T) {
	f := newFixture(t, nil)
	orig := "{“argv”: [“a”, “{connection_file}”], “display_name”: “x”}"
	dir := mkKernel(t, f.kernels, "curly", orig)
	rep, err := PlanFix(Load(dir), FixOptions{Checker: f.checker})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Must(t, os.WriteFile(filepath.Join(dir, FileName), []byte(orig+" "), 0o644)) // edited meanwhile
	if _, err := rep.Apply(time.Now()); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Errorf("Apply over a changed file = %v", err)
	}
	if b := testkit.ReadFile(t, filepath.Join(dir, FileName)); string(b) != orig+" " {
		t.Error("Apply touched a file that changed under it")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.bak-*"))
	if len(matches) != 0 {
		t.Errorf("backups left after a refused fix: %v", matches)
	}

	// Two fixes in the same second keep two backups.
	testkit.Must(t, os.WriteFile(filepath.Join(dir, FileName), []byte(orig), 0o644))
	now := time.Now()
	for i := range 2 {
		rep, err := PlanFix(Load(dir), FixOptions{Checker: f.checker})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rep.Apply(now); err != nil {
			t.Fatal(err)
		}
		testkit.Must(t, os.WriteFile(filepath.Join(dir, FileName), []byte(orig), 0o644))
		if matches, _ := filepath.Glob(filepath.Join(dir, "*.bak-*")); len(matches) != i+1 {
			t.Errorf("after fix %d: backups %v", i+1, matches)
		}
	}
}

func TestFixRefusesUnrepairable(t *testing.T) {
	f := newFixture(t, nil)
	dir := mkKernel(t, f.kernels, "broken", `{"argv": [`)
	if _, err := PlanFix(Load(dir), FixOptions{Checker: f.checker}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("PlanFix of broken JSON = %v, want an error naming the file", err)
	}
}

// FuzzCheck feeds arbitrary bytes as kernel.json through parse, check and fix:
// nothing may panic, and a repaired spec must parse and re-encode stably.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"argv":["apptainer","exec","--nv","/x.sif","python3","-f","{connection_file}"],"display_name":"x"}`))
	f.Add([]byte("{“argv”: [“a”]}"))
	f.Add([]byte(`{"argv":["singularity","-d","run","-B","/a:/b","img"],"metadata":{"sifkernel":{"gpu":"always"}}}`))
	f.Add([]byte(`{"metadata":{"sifkernel":[]}}`))
	fx := newFixture(f, nil)
	dir := filepath.Join(fx.kernels, "fuzz") // each fuzz worker is a process of its own
	testkit.Must(f, os.MkdirAll(dir, 0o755))
	f.Fuzz(func(t *testing.T, data []byte) {
		testkit.Must(t, os.WriteFile(filepath.Join(dir, FileName), data, 0o644))
		k := Load(dir)
		assertRules(t, fx.checker.Check(Entry{Kernel: k}))
		rep, err := PlanFix(k, FixOptions{Checker: fx.checker})
		if err != nil {
			return
		}
		s, err := Parse("fixed", rep.After)
		if err != nil {
			t.Fatalf("fix produced invalid JSON %q: %v", rep.After, err)
		}
		again, _ := s.Encode()
		if string(again) != string(rep.After) {
			t.Fatalf("fixed output not stable:\n%s\n%s", rep.After, again)
		}
	})
}

func TestFixKeepNV(t *testing.T) {
	f := newFixture(t, nil)
	dir := mkKernel(t, f.kernels, "gpu", `{"argv": ["`+f.runtime+`", "exec", "--nv", "`+f.image+`", "python3", "-f", "{connection_file}"], "display_name": "G", "language": "python"}`)
	if _, err := PlanFix(Load(dir), FixOptions{Checker: f.checker, KeepNV: true}); err != ErrNothingToFix {
		t.Errorf("fix --keep-nv of a kernel whose only finding is --nv = %v, want nothing to fix", err)
	}
	rep, err := PlanFix(Load(dir), FixOptions{Checker: f.checker})
	if err != nil {
		t.Fatalf("fix without --keep-nv = %v", err)
	}
	s, _ := Parse("x", rep.After)
	if slices.Contains(s.Argv, "--nv") {
		t.Error("--nv still there")
	}
}

// check reports stale-apptainer exactly when fix repoints argv[0]: one rule
// (Checker.staleRuntime) for both. Before, fix repointed any missing
// absolute argv[0] of a spec that carries metadata.sifkernel, a python3 as
// well as an Apptainer, to the node's Apptainer, while check called the
// python3 an argv0 error that fix cannot repair.
func TestCheckAndFixAgreeOnArgv0(t *testing.T) {
	f := newFixture(t, map[string]string{"JUPYTER_RUNTIME_DIR": "/run/user/1000/jupyter"})
	for _, tc := range []struct {
		name, argv0 string
		stale       bool
	}{
		{"old-apptainer", "/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", true},
		{"old-singularity", "/opt/singularity/3.8/bin/singularity", true},
		{"gone-python", "/gone/bin/python3", false},
		{"here", f.runtime, false},
		{"relative", "apptainer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"argv": ["` + tc.argv0 + `", "exec", "--bind", "/run/user", "--env", "PYTHONNOUSERSITE=1", "` + f.image +
				`", "python3", "-f", "{connection_file}"], "display_name": "K", "language": "python", "metadata": {"sifkernel": {"gpu": "auto"}}}`
			findings := f.check(t, tc.name, body)
			reported := slices.Contains(codes(findings), "error:stale-apptainer")
			rep, err := PlanFix(Load(filepath.Join(f.kernels, tc.name)), FixOptions{Checker: f.checker})
			if err != nil && err != ErrNothingToFix {
				t.Fatalf("PlanFix: %v", err)
			}
			repointed := false
			if err == nil {
				s, perr := Parse("fixed", rep.After)
				if perr != nil {
					t.Fatal(perr)
				}
				repointed = s.Argv[0] != tc.argv0
			}
			if reported != tc.stale || repointed != tc.stale {
				t.Errorf("argv[0] %s: check reports stale-apptainer %v, fix repoints it %v; want both %v (findings %v)",
					tc.argv0, reported, repointed, tc.stale, codes(findings))
			}
		})
	}
}

// assertRules fails unless every finding is a rule of the table, with a
// severity the table allows and the table's word on whether fix repairs it.
func assertRules(t *testing.T, findings []Finding) {
	t.Helper()
	for _, f := range findings {
		i := slices.IndexFunc(Rules(), func(r Rule) bool { return r.Code == f.Code })
		if i < 0 {
			t.Errorf("finding %s is not in the rule table", f.Code)
			continue
		}
		r := Rules()[i]
		if !slices.Contains(r.Severities, f.Severity) || r.Fixable() != f.Fixable {
			t.Errorf("finding %s is %s, fixable %v; the table says %v, fixable %v", f.Code, f.Severity, f.Fixable, r.Severities, r.Fixable())
		}
	}
}

// TestFixRepairsEveryFixableRule: for each rule the table calls fixable, a
// kernel that has it, checked, fixed, and checked again no longer has it;
// and every rule the table names fixable is in this list, so a new fixable
// rule without a repair fails here.
func TestFixRepairsEveryFixableRule(t *testing.T) {
	f := newFixture(t, map[string]string{"JUPYTER_RUNTIME_DIR": "/run/user/1000/jupyter"})
	py := `"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"`
	bodies := map[string]string{
		"json-curly-quotes": `{“argv”: ["` + f.runtime + `", "exec", "--bind", "/run/user", "` + f.image + `", ` + py + `], "display_name": "K"}`,
		"stale-apptainer":   `{"argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--bind", "/run/user", "` + f.image + `", ` + py + `], "display_name": "K"}`,
		"nv-hardcoded":      `{"argv": ["` + f.runtime + `", "exec", "--nv", "--bind", "/run/user", "` + f.image + `", ` + py + `], "display_name": "K"}`,
		"connection-dir":    `{"argv": ["` + f.runtime + `", "exec", "` + f.image + `", ` + py + `], "display_name": "K"}`,
	}
	for _, r := range Rules() {
		if r.Fixable() && bodies[r.Code] == "" {
			t.Errorf("rule %s is fixable but this test has no kernel for it", r.Code)
		}
	}
	for code, body := range bodies {
		t.Run(code, func(t *testing.T) {
			has := func(fs []Finding) bool {
				return slices.ContainsFunc(fs, func(x Finding) bool { return x.Code == code })
			}
			if before := f.check(t, code, body); !has(before) {
				t.Fatalf("the kernel for %s does not have it: %v", code, codes(before))
			}
			rep, err := PlanFix(Load(filepath.Join(f.kernels, code)), FixOptions{Checker: f.checker})
			testkit.Must(t, err)
			if after := f.check(t, code, string(rep.After)); has(after) {
				t.Errorf("after fix, still %s: %v", code, after)
			}
		})
	}
}
