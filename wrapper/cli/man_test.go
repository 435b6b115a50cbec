package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
)

// TestManPages renders every page with man(1), as lintian and a reader
// would: no groff or man warning, and each page documents its commands.
func TestManPages(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		testkit.Skip(t, "man(1) is not installed (apt-get install man-db)")
	}
	example, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "config.toml"))
	testkit.Must(t, err)
	pages, err := ManPages("1.2.3", example)
	testkit.Must(t, err)
	want := map[string][]string{
		"sifkernel.1":        {"kernel", "stage", "prolog", "EXIT STATUS", "SIFKERNEL_CONFIG"},
		"sifkernel-kernel.1": {"add", "--image", "check", "fix", "--dry-run", "remove"},
		"sifkernel-cache.1":  {"stage", "--bcast", "gc", "THE NODE CACHE", "metrics", "--textfile", "sifkernel_cache_bytes"},
		"sifkernel-job.1":    {"activate", "run", "idev", "EXAMPLES"},
		"sifkernel-hooks.8":  {"prolog", "epilog", "taskprolog", "sweep", "FAILURE POLICY", "PrologFlags=Alloc"},
		"sifkernel.toml.5":   {"stage_timeout", "fail_node_on", "config show"},
	}
	dir := t.TempDir()
	for _, p := range pages {
		words, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected page %s", p.Name)
			continue
		}
		delete(want, p.Name)
		file := filepath.Join(dir, p.Name)
		testkit.Must(t, os.WriteFile(file, p.Roff, 0o644))
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", file)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0", "LC_ALL=C.UTF-8")
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v\n%s", p.Name, err, stderr.String())
		}
		text := stripOverstrike(out.String())
		if !strings.Contains(text, "1.2.3") {
			t.Errorf("%s does not name the version", p.Name)
		}
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q", p.Name, w)
			}
		}
		if strings.Contains(text, "internal") && !strings.Contains(p.Name, "hooks") {
			t.Errorf("%s documents the hidden internal command", p.Name)
		}
	}
	for name := range want {
		t.Errorf("no page %s", name)
	}
}

// stripOverstrike removes the backspace bold and underline man writes.
func stripOverstrike(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if i+1 < len(r) && r[i+1] == '\b' {
			i++
			continue
		}
		b.WriteRune(r[i])
	}
	return b.String()
}

// TestCheckCodesDocumented: `kernel check --help` and sifkernel-kernel(1)
// list every code of the rule table with its meaning, from the table.
func TestCheckCodesDocumented(t *testing.T) {
	help, err := newSite(t).run(t, "kernel", "check", "--help")
	testkit.Must(t, err)
	page := string(manPage(t, "sifkernel-kernel.1").Roff)
	flat := func(s string) string {
		return strings.Join(strings.Fields(strings.NewReplacer(`\-`, "-", `\(aq`, "'", `\`, "").Replace(s)), " ")
	}
	for _, r := range kernelspec.Rules() {
		for where, text := range map[string]string{"kernel check --help": help, "sifkernel-kernel.1": page} {
			if !strings.Contains(flat(text), r.Code) || !strings.Contains(flat(text), flat(r.Meaning)) {
				t.Errorf("%s does not document %s as the table does", where, r.Code)
			}
		}
	}
}

// TestManDefaults: every default a man page states ("**key** (default
// VALUE)", the one way the pages state one) is config.Default()'s, and no
// page states a default any other way.
func TestManDefaults(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "config.toml"))
	testkit.Must(t, err)
	pages, err := ManPages("1.2.3", example)
	testkit.Must(t, err)
	want := map[string]string{}
	for _, st := range config.Defaults().Settings() {
		want[st.Key] = fmt.Sprint(st.Value)
	}
	stated := regexp.MustCompile(`\*\*([a-z\\_]+\.[a-z\\_]+)\*\* \(default ([^)]*)\)`)
	n := 0
	for _, p := range pages {
		md := string(p.Markdown)
		matches := stated.FindAllStringSubmatch(md, -1)
		for _, m := range matches {
			key := strings.ReplaceAll(m[1], `\_`, "_")
			v, ok := want[key]
			if !ok || (m[2] != v && !(v == "" && m[2] == `""`)) {
				t.Errorf("%s states %s (default %s); config.Default() has %q", p.Name, key, m[2], v)
			}
		}
		n += len(matches)
		if all := strings.Count(md, "(default "); all != len(matches) {
			t.Errorf("%s states %d defaults, %d of them not as **key** (default VALUE)", p.Name, all, all-len(matches))
		}
		if strings.Contains(md, "/var/tmp/sifkernel") && config.Default().Cache.Dir != "/var/tmp/sifkernel" {
			t.Errorf("%s names /var/tmp/sifkernel, not the default cache %s", p.Name, config.Default().Cache.Dir)
		}
	}
	if n < 6 {
		t.Errorf("the pages state %d defaults; the test expects the cache's and metrics' (6)", n)
	}
}

// TestManMarkdownCurrent: doc/man holds the pages' Markdown as the code
// renders it now (go test -update rewrites it).
func TestManMarkdownCurrent(t *testing.T) {
	root := testkit.RepoRoot()
	example, err := os.ReadFile(filepath.Join(root, "examples", "config.toml"))
	testkit.Must(t, err)
	pages, err := ManPages("main", example)
	testkit.Must(t, err)
	dir := filepath.Join(root, "doc", "man")
	for _, p := range pages {
		file := filepath.Join(dir, p.Name+".md")
		if *updateDocs {
			testkit.Must(t, os.MkdirAll(dir, 0o755))
			testkit.Must(t, os.WriteFile(file, p.Markdown, 0o644))
		}
		have, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(have, p.Markdown) {
			t.Errorf("%s is not what the commands render (go test ./wrapper/cli -run ManMarkdown -update-docs): %v", file, err)
		}
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite doc/man from the commands")

// TestFailureReasonsDocumented: the admin guide's table of failure reasons
// and sifkernel-hooks(8) are metrics.Reasons, row for row; every node fault
// prolog.fail_node_on accepts is a reason.
func TestFailureReasonsDocumented(t *testing.T) {
	guide := string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "slurm", "README.md")))
	_, table, ok := strings.Cut(guide, "| reason | what |\n|---|---|\n")
	if !ok {
		t.Fatal("slurm/README.md has no table of failure reasons")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var want []string
	for _, r := range metrics.Reasons() {
		want = append(want, fmt.Sprintf("| `%s` | %s |", r.Reason, r.Means))
	}
	if got := strings.Split(strings.TrimSpace(table), "\n"); !slices.Equal(got, want) {
		t.Errorf("slurm/README.md's failure reasons:\n%s\nwant (metrics.Reasons):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	page := string(manPage(t, "sifkernel-hooks.8").Markdown)
	flat := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, `\`, "")), " ") }
	for _, r := range metrics.Reasons() {
		if !strings.Contains(flat(page), "**"+string(r.Reason)+"** : "+flat(r.Means)) {
			t.Errorf("sifkernel-hooks.8 does not give %s as metrics.Reasons does", r.Reason)
		}
	}
	known := map[string]bool{}
	for _, r := range metrics.Reasons() {
		known[string(r.Reason)] = true
	}
	for _, f := range config.NodeFaults {
		if !known[f] {
			t.Errorf("node fault %q is not a failure reason", f)
		}
	}
}

// manPage renders the pages (with the example config) and gives the one named.
func manPage(t *testing.T, name string) ManPage {
	t.Helper()
	pages, err := ManPages("1.2.3", testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "examples", "config.toml")))
	testkit.Must(t, err)
	for _, p := range pages {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no page %s", name)
	return ManPage{}
}
