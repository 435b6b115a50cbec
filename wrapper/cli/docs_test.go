package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/config"
)

// docs are the files whose commands TestDocCommands holds to the code.
var docs = []string{"README.md", "slurm/README.md", "testcluster/README.md", "doc/jupyter.md"}

// TestDocCommands: every command the docs show, in a code block or a code
// span, is one this tree has: a sifkernel command whose subcommands and
// flags parse, a make target of the Makefile, a script of the tree that
// can be run, a go test of a package whose -run pattern names tests that
// exist. A renamed flag or target, a moved script or test, fails here.
func TestDocCommands(t *testing.T) {
	root := testkit.RepoRoot()
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	testkit.Must(t, err)
	app := (&env{Options: Options{Version: "test"}}).app()
	checked := 0
	for _, doc := range docs {
		for _, c := range docCommands(t, filepath.Join(root, doc)) {
			checked++
			words := shellWords(c.text)
			if len(words) > 0 && words[0] == "sudo" {
				words = words[1:]
			}
			if len(words) == 0 {
				continue
			}
			var err string
			switch w := words[0]; {
			case w == "sifkernel":
				err = checkSifkernel(app, words[1:])
			case w == "make":
				err = checkMake(string(makefile), words[1:])
			case w == "go" && len(words) > 1 && words[1] == "test":
				err = checkGoTest(root, words[2:])
			case strings.Contains(w, "/"):
				err = checkScript(root, w)
			}
			if err != "" {
				t.Errorf("%s:%d: %s: %s", doc, c.line, c.text, err)
			}
		}
	}
	if checked < 50 {
		t.Errorf("found %d commands in the docs; the extraction is broken", checked)
	}
}

type docCommand struct {
	text string
	line int
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// commandStart says which lines and spans are commands to check.
var commandStart = regexp.MustCompile(`^(sudo )?(sifkernel |make |go test |(testcluster|examples)/[\w./-]+( |$))`)

// docCommands finds the commands in a Markdown file: lines of fenced code
// blocks, and code spans, that start like a command (eval "$(...)" is
// unwrapped).
func docCommands(t *testing.T, file string) []docCommand {
	f, err := os.Open(file)
	testkit.Must(t, err)
	defer f.Close()
	var out []docCommand
	fenced := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		var candidates []string
		if fenced {
			candidates = []string{strings.TrimSpace(line)}
		} else {
			for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
				candidates = append(candidates, m[1])
			}
		}
		for _, c := range candidates {
			c = strings.TrimPrefix(c, `eval "$(`)
			if i := strings.Index(c, ` #`); i >= 0 {
				c = c[:i]
			}
			for _, sep := range []string{" | ", " && ", "; ", `)"`} {
				if i := strings.Index(c, sep); i >= 0 {
					c = c[:i]
				}
			}
			c = strings.TrimSpace(c)
			if commandStart.MatchString(c) && !strings.Contains(c, "...") {
				out = append(out, docCommand{c, n})
			}
		}
	}
	return out
}

// shellWords splits a command as sh would, near enough: quotes group,
// and a word is kept with its quotes removed.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quote := rune(0)
	in := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// checkSifkernel resolves the command path and each flag given to it.
func checkSifkernel(app *cli.App, args []string) string {
	cmds := app.Commands
	var cmd *cli.Command
	var path []string
	flags := slices.Clone(app.Flags)
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.HasName(args[0]) })
		if i < 0 {
			if cmd == nil {
				return "no command " + args[0]
			}
			break // a positional argument
		}
		cmd = cmds[i]
		path = append(path, cmd.Name)
		flags = append(flags, cmd.Flags...)
		cmds = cmd.Subcommands
		args = args[1:]
	}
	if cmd == nil || cmd.SkipFlagParsing {
		return ""
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !slices.ContainsFunc(flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }) && name != "help" && name != "h" {
			return "sifkernel " + strings.Join(path, " ") + " has no flag " + a
		}
	}
	return ""
}

func checkMake(makefile string, args []string) string {
	for _, a := range args {
		if strings.Contains(a, "=") || strings.HasPrefix(a, "-") {
			continue // a variable or make's own flag
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + `:`).MatchString(makefile) {
			return "the Makefile has no target " + a
		}
	}
	return ""
}

func checkScript(root, path string) string {
	st, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		return err.Error()
	}
	if st.Mode().IsRegular() && st.Mode()&0o111 == 0 && !strings.HasSuffix(path, ".md") {
		return path + " is not executable"
	}
	return ""
}

// checkGoTest: the package exists, and a -run pattern matches a test in it.
func checkGoTest(root string, args []string) string {
	var pkgs []string
	run := ""
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-run" && i+1 < len(args):
			run = args[i+1]
			i++
		case strings.HasPrefix(a, "-run="):
			run = strings.TrimPrefix(a, "-run=")
		case strings.HasPrefix(a, "./"):
			pkgs = append(pkgs, strings.TrimSuffix(a, "/..."))
		case a == "-bench" && i+1 < len(args):
			i++
		}
	}
	for _, p := range pkgs {
		dir := filepath.Join(root, p)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return "no package " + p
		}
		if run == "" || strings.HasSuffix(p, "...") {
			continue
		}
		re, err := regexp.Compile(strings.Split(run, "/")[0])
		if err != nil {
			return "bad -run " + run
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		found := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err.Error()
			}
			for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(`).FindAllStringSubmatch(string(b), -1) {
				found = found || re.MatchString(m[1])
			}
		}
		if !found {
			return "no test in " + p + " matches -run " + run
		}
	}
	return ""
}

// TestPrologEpilogTimeoutRule: every PrologEpilogTimeout= the tree gives a
// site is what the one rule asks of the default prolog.timeout, and the
// admin guide, snippet and man page state the rule with the margin in
// config.SlurmMargin.
func TestPrologEpilogTimeoutRule(t *testing.T) {
	c := config.Default()
	want := fmt.Sprintf("PrologEpilogTimeout=%d", int(c.PrologEpilogTimeout().Seconds()))
	rule := fmt.Sprintf("prolog.timeout + %d s", int(config.SlurmMargin.Seconds()))
	set := regexp.MustCompile(`PrologEpilogTimeout=[0-9]+`)
	for _, f := range []string{"slurm/slurm.conf.snippet", "slurm/README.md", "doc/man/sifkernel-hooks.8.md"} {
		data := string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), f)))
		found := set.FindAllString(data, -1)
		if len(found) == 0 {
			t.Errorf("%s sets no PrologEpilogTimeout", f)
		}
		for _, got := range found {
			if got != want {
				t.Errorf("%s: %s, but prolog.timeout %s + %s asks %s", f, got, c.Prolog.Timeout.Duration, config.SlurmMargin, want)
			}
		}
		if !strings.Contains(data, rule) {
			t.Errorf("%s does not state the rule %q", f, rule)
		}
	}
}

// TestErrcheckExcludes: the developer guide lists exactly what
// .errcheck-excludes lets errcheck pass.
func TestErrcheckExcludes(t *testing.T) {
	var file []string
	for _, l := range strings.Split(string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), ".errcheck-excludes"))), "\n") {
		if l != "" && !strings.HasPrefix(l, "//") {
			file = append(file, l)
		}
	}
	guide := string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "testcluster", "README.md")))
	_, after, ok := strings.Cut(guide, "`TestErrcheckExcludes` holds to the file:\n\n```\n")
	if !ok {
		t.Fatal("testcluster/README.md does not list the errcheck exclusions")
	}
	list, _, _ := strings.Cut(after, "\n```")
	if got := strings.Split(list, "\n"); !slices.Equal(got, file) {
		t.Errorf("testcluster/README.md lists\n%s\n.errcheck-excludes has\n%s", list, strings.Join(file, "\n"))
	}
}

// TestInstallCacheDir: make install's CACHEDIR defaults to cache.dir's
// default, and every installed file that names the cache root names it so
// (install rewrites that spelling to CACHEDIR).
func TestInstallCacheDir(t *testing.T) {
	dir := config.Default().Cache.Dir
	mk := string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "Makefile")))
	if !regexp.MustCompile(`(?m)^CACHEDIR\s*\?= ` + regexp.QuoteMeta(dir) + `$`).MatchString(mk) {
		t.Errorf("the Makefile's CACHEDIR default is not cache.dir's default %s", dir)
	}
	for _, f := range []string{"slurm/tmpfiles.d/sifkernel.conf", "slurm/profile.d/sifkernel.sh", "slurm/profile.d/sifkernel.csh", "examples/config.toml"} {
		if !strings.Contains(string(testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), f))), dir) {
			t.Errorf("%s does not name %s, which make install rewrites to CACHEDIR", f, dir)
		}
	}
}
