package kernelspec

import (
	"fmt"
	"strings"
)

// Rule is one thing `kernel check` reports: its code, how serious it can be,
// what it means to a reader, and, when `kernel fix` repairs it, how. The
// table below is the only place a code is written down: check takes the
// severity it may use and whether a finding is fixable from it, fix runs its
// repairs in its order, and the man page and `kernel check --help` print it.
type Rule struct {
	Code       string
	Severities []Severity // what check may report it as, most serious first
	Meaning    string     // what a user reads in the docs
	// repair changes a container kernel's command so the rule no longer
	// fires, and says what it did ("" for nothing); nil when fix cannot.
	// json-curly-quotes is repaired before the spec is read (see PlanFix).
	repair func(*fixing) (string, error)
	// beforeParse marks the one fixable rule repaired on the raw text.
	beforeParse bool
}

// Fixable says whether `kernel fix` repairs what the rule finds.
func (r Rule) Fixable() bool { return r.repair != nil || r.beforeParse }

// Kind is how the docs head a rule: its severities, and whether fix
// repairs it ("error / warning", "error, fixable").
func (r Rule) Kind() string {
	sev := make([]string, len(r.Severities))
	for i, s := range r.Severities {
		sev[i] = string(s)
	}
	k := strings.Join(sev, " / ")
	if r.Fixable() {
		k += ", fixable"
	}
	return k
}

var (
	errSev  = []Severity{Error}
	warnSev = []Severity{Warning}
	infoSev = []Severity{Info}
)

// Rules are every finding check makes, in the order the docs list them.
func Rules() []Rule { return rules }

var rules = []Rule{
	{Code: "json-curly-quotes", Severities: errSev, beforeParse: true,
		Meaning: "curly quotes (“ ” ‘ ’) where JSON needs \"; reported with line and column, and the rest of the file is checked as if they were straight"},
	{Code: "json", Severities: errSev,
		Meaning: "invalid JSON as Python reads it (Jupyter's reader), with line and column"},
	{Code: "jupyter-load", Severities: errSev,
		Meaning: "jupyter_client cannot load it (a field of the wrong type for traitlets, a bad interrupt_mode, a resource_dir key, an unknown provisioner, JSON Python refuses, nesting deeper than the Jupyter's Python allows): Jupyter leaves it out of its list"},
	{Code: "ignored", Severities: warnSev,
		Meaning: "the directory's kernel.json is not a regular file (a broken link, a directory, a FIFO): Jupyter does not count it as a kernel"},
	{Code: "schema", Severities: errSev,
		Meaning: "a known field has a type a container kernel cannot start with (e.g. argv a string, env values that are not strings)"},
	{Code: "read", Severities: errSev,
		Meaning: fmt.Sprintf("kernel.json unreadable or larger than %d MiB", MaxFileSize>>20)},
	{Code: "name", Severities: warnSev,
		Meaning: "the directory name is not a valid kernel name (Jupyter warns, but lists and starts it) / has capitals (Jupyter lowercases it)"},
	{Code: "shadowed", Severities: warnSev,
		Meaning: "a kernel of the same name earlier in the search path hides this one"},
	{Code: "jupyter-version", Severities: infoSev,
		Meaning: "the other generation of jupyter_core (4 or 5) would use another directory for this name"},
	{Code: "display-name", Severities: warnSev, Meaning: "no display_name: Jupyter shows an empty name"},
	{Code: "argv", Severities: errSev, Meaning: "argv is empty"},
	{Code: "connection-file", Severities: errSev, Meaning: "argv does not pass {connection_file}"},
	{Code: "argv0", Severities: []Severity{Error, Warning},
		Meaning: "argv[0] missing or not executable / relative and not on PATH"},
	{Code: "stale-apptainer", Severities: errSev, repair: repairStaleRuntime,
		Meaning: "argv[0] is an Apptainer that no longer exists, while another is found on this node; fix points argv[0] at that one"},
	{Code: "container-argv", Severities: errSev,
		Meaning: "the container command cannot be read (e.g. shell instead of exec)"},
	{Code: "unknown-flag", Severities: warnSev,
		Meaning: "an Apptainer flag sifkernel does not know (taken to have no value)"},
	{Code: "image-missing", Severities: errSev, Meaning: "the image does not exist"},
	{Code: "image-unreadable", Severities: errSev, Meaning: "the image cannot be read"},
	{Code: "image-corrupt", Severities: errSev, Meaning: "the image is a damaged SIF (e.g. truncated)"},
	{Code: "image-format", Severities: warnSev,
		Meaning: "a sandbox directory or a non-SIF image: runs, but cannot be checked or staged"},
	{Code: "image-relative", Severities: warnSev, Meaning: "a relative image path"},
	{Code: "image-remote", Severities: infoSev, Meaning: "a docker:// (or other remote) image, pulled at every start"},
	{Code: "nv-hardcoded", Severities: warnSev, repair: repairGPUFlag,
		Meaning: "--nv in a kernel whose metadata.sifkernel.gpu is not always; fix removes it and each job adds it on GPU nodes (--keep-nv keeps it)"},
	{Code: "connection-dir", Severities: errSev, repair: repairConnectionDir,
		Meaning: "the connection file's directory (JUPYTER_RUNTIME_DIR, else <data dir>/runtime) is not visible in the container; fix adds a --bind for it"},
	{Code: "user-site", Severities: infoSev, Meaning: "a Python container kernel without PYTHONNOUSERSITE"},
}

// rule is the table's entry for code. A code not in the table is a bug the
// tests catch; it reads as an error nobody can fix.
func rule(code string) Rule {
	for _, r := range rules {
		if r.Code == code {
			return r
		}
	}
	return Rule{Code: code, Severities: errSev}
}

// RulesText is the table as plain text, one rule a paragraph, for
// `kernel check --help` and the man page.
func RulesText() string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%s (%s)\n", r.Code, r.Kind())
		line := "   "
		for _, w := range strings.Fields(r.Meaning) {
			if len(line)+1+len(w) > 76 {
				b.WriteString(line + "\n")
				line = "   "
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// FixableCodes are the codes `kernel fix` repairs, in table order.
func FixableCodes() []string {
	var out []string
	for _, r := range rules {
		if r.Fixable() {
			out = append(out, r.Code)
		}
	}
	return out
}
