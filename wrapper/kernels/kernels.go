// Package kernels does the work of `sifkernel kernel ...` for the user who
// runs it: find, add (pulling a remote image first), check, fix and remove
// containerized kernelspecs. The cli package parses flags and prints what
// these functions return; nothing here prints to the terminal except
// Apptainer's own pull output, which goes to User.Stderr.
package kernels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// ErrUsage marks an error in what the user asked for (a bad name, a bad
// option), as opposed to one the files or the system gave.
var ErrUsage = errors.New("usage")

type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Is(target error) bool { return target == ErrUsage }
func (e usageError) Unwrap() error        { return e.err }

func usage(err error) error { return usageError{err} }

// User is the person running sifkernel, with what commands take from the
// process. Tests set every field.
type User struct {
	Config    *config.Loaded
	Getenv    func(string) string
	LookupEnv func(string) (string, bool)
	Home      string
	Log       logrus.FieldLogger
	Stderr    io.Writer // Apptainer's own output while it pulls
	Now       func() time.Time
	Version   string // written into new kernels' metadata

	model *kernelspec.Jupyter // resolved once, on first use
}

// Env is where Jupyter looks for kernels, for this user, with the Jupyter
// model the config (jupyter.core, jupyter.python) chooses.
func (u *User) Env() kernelspec.Env {
	e := kernelspec.Env{Getenv: u.Getenv, LookupEnv: u.LookupEnv, Home: u.Home}
	if u.model == nil {
		j, err := ModelFor(e, u.Config)
		if err != nil && u.Log != nil {
			u.Log.Warn(err.Error())
		}
		u.model = &j
	}
	e.Jupyter = u.model
	return e
}

// ModelFor resolves the Jupyter model the config asks for (see
// kernelspec.ResolveJupyter); on a bad setting it detects, and says why.
func ModelFor(e kernelspec.Env, cfg *config.Loaded) (kernelspec.Jupyter, error) {
	from := func(key string) string { return key + " (" + cfg.Source(key).String() + ")" }
	j, err := kernelspec.ResolveJupyter(e, cfg.Jupyter.Core, cfg.Jupyter.Python, from("jupyter.core"))
	if err != nil {
		return kernelspec.DetectJupyter(e), err
	}
	if cfg.Jupyter.Python != "" && cfg.Jupyter.Python != "auto" {
		j.Why = strings.Replace(j.Why, from("jupyter.core"), from("jupyter.python"), 1)
	}
	return j, nil
}

// Finder finds Apptainer as the config says.
func (u *User) Finder() apptainer.Finder { return u.Config.Apptainer.Finder(u.Getenv) }

// Checker lints against the runtime found on this node, if any.
func (u *User) Checker(ctx context.Context) kernelspec.Checker {
	ch := kernelspec.Checker{Env: u.Env(), GPUFlag: u.Config.Apptainer.GPUFlag}
	ch.Other, ch.OtherName = ch.Env.OtherWinners()
	ch.LookPath = func(name string) (string, error) { return LookPath(name, u.Getenv("PATH")) }
	if rt, err := u.Finder().Find(ctx); err == nil {
		ch.Runtime = &rt
	}
	return ch
}

// LookPath searches the given PATH, not the process's, so tests and hooks
// control it.
func LookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if apptainer.Executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH", name)
}

// Select returns every discovered kernel, or those named (each name must
// match at least one). Names compare as Jupyter compares them.
func (u *User) Select(names []string) ([]kernelspec.Entry, error) {
	all := u.Env().Kernels()
	if len(names) == 0 {
		return all, nil
	}
	var out []kernelspec.Entry
	for _, n := range names {
		found := kernelspec.Find(all, n)
		if len(found) == 0 {
			return nil, fmt.Errorf("no kernel named %q in Jupyter's search path (see sifkernel kernel list)", n)
		}
		out = append(out, found...)
	}
	return out, nil
}

// Checked is what a check of several kernels found.
type Checked struct {
	Findings map[string][]kernelspec.Finding // by kernel directory
	Errors   int
	Warnings int
}

// CheckAll lints entries and counts errors and warnings.
func CheckAll(ch kernelspec.Checker, entries []kernelspec.Entry) Checked {
	r := Checked{Findings: map[string][]kernelspec.Finding{}}
	for _, en := range entries {
		fs := ch.Check(en)
		r.Findings[en.Dir] = fs
		for _, f := range fs {
			switch f.Severity {
			case kernelspec.Error:
				r.Errors++
			case kernelspec.Warning:
				r.Warnings++
			}
		}
	}
	return r
}

// DataDir is the Jupyter data directory a command writes to: dir if given,
// else JUPYTER_DATA_DIR or ~/.local/share/jupyter; always absolute.
func (u *User) DataDir(dir string) (string, error) {
	if dir == "" {
		dir = u.Env().DataDir()
	}
	return filepath.Abs(dir)
}
