// Package apptainer finds the container runtime on a node and models the argv
// of `apptainer exec|run`, so kernelspecs can be parsed, checked and rewritten
// without losing anything the user wrote.
package apptainer

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Style records how a flag's value was written, so formatting gives back the
// user's own spelling.
type Style int

// The ways a flag can be written.
const (
	Bare     Style = iota // --nv
	Separate              // --bind /a  or  -B /a
	Equals                // --bind=/a  or  -B=/a
	Attached              // -B/a
)

// Flag is one runtime flag as written.
type Flag struct {
	Name  string // as written: "--bind", "-B", "--nv"
	Value string
	Style Style
	Known bool // listed in the flag tables; unknown flags are kept verbatim
}

// Canonical gives the long name of a flag ("-B" -> "--bind").
func (f Flag) Canonical() string {
	if long, ok := shortFlags[f.Name]; ok {
		return long
	}
	return f.Name
}

// Args formats the flag back into argv elements.
func (f Flag) Args() []string {
	switch f.Style {
	case Separate:
		return []string{f.Name, f.Value}
	case Equals:
		return []string{f.Name + "=" + f.Value}
	case Attached:
		return []string{f.Name + f.Value}
	}
	return []string{f.Name}
}

// Command is the argv of a container kernel: RUNTIME [global flags] VERB [flags] IMAGE CMD...
type Command struct {
	Runtime     string
	GlobalFlags []Flag
	Verb        string // exec or run
	Flags       []Flag
	DashDash    bool // a "--" separated the flags from the image
	Image       string
	Args        []string
}

// Verbs a kernel may use: both run a command in the image and keep stdio.
var Verbs = []string{"exec", "run"}

// ErrNotContainer says an argv does not start an Apptainer or Singularity runtime.
var ErrNotContainer = errors.New("argv[0] is not apptainer or singularity")

// IsRuntime reports whether argv0 names a container runtime, by base name.
func IsRuntime(argv0 string) bool {
	b := filepath.Base(argv0)
	return b == "apptainer" || b == "singularity"
}

// Parse splits a container kernel's argv. Unknown flags are kept: a flag the
// tables do not know is taken to have no value unless written --flag=value.
func Parse(argv []string) (*Command, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty argv")
	}
	c := &Command{Runtime: argv[0]}
	rest, err := parseFlags(argv[1:], globalValueFlags, globalBoolFlags, &c.GlobalFlags, nil)
	if err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return nil, errors.New("no verb: expected exec or run after the runtime")
	}
	c.Verb, rest = rest[0], rest[1:]
	if !slices.Contains(Verbs, c.Verb) {
		return nil, fmt.Errorf("verb %q: a kernel must use exec or run", c.Verb)
	}
	rest, err = parseFlags(rest, valueFlags, boolFlags, &c.Flags, &c.DashDash)
	if err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("no image after %q", c.Verb)
	}
	c.Image, c.Args = rest[0], slices.Clone(rest[1:])
	return c, nil
}

func parseFlags(args []string, values, bools map[string]bool, out *[]Flag, dashdash *bool) ([]string, error) {
	for len(args) > 0 {
		a := args[0]
		if a == "--" && dashdash != nil {
			*dashdash = true
			return args[1:], nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return args, nil
		}
		f, n, err := parseFlag(args, values, bools)
		if err != nil {
			return nil, err
		}
		*out = append(*out, f)
		args = args[n:]
	}
	return args, nil
}

// parseFlag reads one flag from the front of args and says how many elements it used.
func parseFlag(args []string, values, bools map[string]bool) (Flag, int, error) {
	a := args[0]
	name, value, hasEq := strings.Cut(a, "=")
	long := name
	if l, ok := shortFlags[name]; ok {
		long = l
	}
	switch {
	case hasEq:
		return Flag{Name: name, Value: value, Style: Equals, Known: values[long] || bools[long]}, 1, nil
	case bools[long]:
		return Flag{Name: name, Known: true}, 1, nil
	case values[long]:
		if len(args) < 2 {
			return Flag{}, 0, fmt.Errorf("flag %s needs a value", name)
		}
		return Flag{Name: name, Value: args[1], Style: Separate, Known: true}, 2, nil
	}
	if len(a) > 2 && a[1] != '-' {
		if l, ok := shortFlags[a[:2]]; ok && values[l] {
			return Flag{Name: a[:2], Value: a[2:], Style: Attached, Known: true}, 1, nil
		}
	}
	return Flag{Name: a}, 1, nil
}

// Argv formats the command back into an argv.
func (c *Command) Argv() []string {
	out := []string{c.Runtime}
	for _, f := range c.GlobalFlags {
		out = append(out, f.Args()...)
	}
	out = append(out, c.Verb)
	for _, f := range c.Flags {
		out = append(out, f.Args()...)
	}
	if c.DashDash {
		out = append(out, "--")
	}
	out = append(out, c.Image)
	return append(out, c.Args...)
}

// Has reports whether a flag with this canonical name is present.
func (c *Command) Has(long string) bool {
	return slices.ContainsFunc(c.Flags, func(f Flag) bool { return f.Canonical() == long })
}

// Remove drops every flag with this canonical name and says whether any was there.
func (c *Command) Remove(long string) bool {
	n := len(c.Flags)
	c.Flags = slices.DeleteFunc(c.Flags, func(f Flag) bool { return f.Canonical() == long })
	return len(c.Flags) != n
}

// Add appends a flag, written in long form.
func (c *Command) Add(long, value string) {
	f := Flag{Name: long, Known: valueFlags[long] || boolFlags[long]}
	if value != "" {
		f.Value, f.Style = value, Separate
	}
	c.Flags = append(c.Flags, f)
}

// Values returns the values of every flag with this canonical name, in order.
func (c *Command) Values(long string) []string {
	var out []string
	for _, f := range c.Flags {
		if f.Canonical() == long {
			out = append(out, f.Value)
		}
	}
	return out
}

// Unknown lists the flags the tables do not know.
func (c *Command) Unknown() []string {
	var out []string
	for _, f := range append(slices.Clone(c.GlobalFlags), c.Flags...) {
		if !f.Known {
			out = append(out, f.Name)
		}
	}
	return out
}
