package apptainer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// Runtime is an Apptainer (or Singularity) found on this node.
type Runtime struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`              // which rule found it, e.g. "APPTAINER_BIN"
	Version string `json:"version,omitempty"` // from --version; empty if it did not answer
}

// Finder looks for the runtime. Its fields are the inputs, so tests and hooks
// (which run with no PATH) control exactly what is consulted.
type Finder struct {
	ConfigPath string              // apptainer.path from the config
	Search     []string            // apptainer.search globs
	Getenv     func(string) string // nil means os.Getenv
	Timeout    time.Duration       // for --version; 0 means 5s
}

// ErrNotFound says no rule found an executable runtime.
var ErrNotFound = errors.New("apptainer not found")

// Find applies the rules in order: apptainer.path, APPTAINER_BIN, apptainer
// then singularity on PATH, then each search glob (highest version first).
// It asks the runtime for its version.
func (f Finder) Find(ctx context.Context) (Runtime, error) {
	rt, err := f.Locate()
	if err != nil {
		return rt, err
	}
	rt.Version = f.version(ctx, rt.Path)
	return rt, nil
}

// Locate applies the rules without running anything.
func (f Finder) Locate() (Runtime, error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var tried []string
	try := func(path, rule string) (Runtime, bool) {
		if path == "" {
			return Runtime{}, false
		}
		if err := Executable(path); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				tried = append(tried, fmt.Sprintf("%s: %s: %v", rule, path, err))
			}
			return Runtime{}, false
		}
		return Runtime{Path: path, Rule: rule}, true
	}
	if rt, ok := try(f.ConfigPath, "config apptainer.path"); ok {
		return rt, nil
	}
	if rt, ok := try(getenv("APPTAINER_BIN"), "APPTAINER_BIN"); ok {
		return rt, nil
	}
	for _, name := range []string{"apptainer", "singularity"} {
		for _, dir := range filepath.SplitList(getenv("PATH")) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue // a relative PATH entry would depend on the working directory
			}
			if rt, ok := try(filepath.Join(dir, name), "PATH ("+name+")"); ok {
				return rt, nil
			}
		}
	}
	for _, g := range f.Search {
		for _, p := range Glob(g) {
			if rt, ok := try(p, "search "+g); ok {
				return rt, nil
			}
		}
	}
	msg := "not on PATH or in " + strings.Join(f.Search, ", ")
	if len(tried) > 0 {
		msg += "; unusable: " + strings.Join(tried, "; ")
	}
	msg += " (load the apptainer module, or set APPTAINER_BIN or apptainer.path)"
	return Runtime{}, fmt.Errorf("%w: %s", ErrNotFound, msg)
}

// Glob expands a pattern and orders the matches highest version first.
func Glob(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	slices.SortFunc(m, func(a, b string) int { return CompareVersions(b, a) })
	return m
}

// Executable reports why path cannot be run: missing, not a regular file, or
// not executable by this process.
func Executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("not executable: %w", err)
	}
	return nil
}

func (f Finder) version(ctx context.Context, path string) string {
	t := f.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	if os.Geteuid() == 0 && fsx.CheckTrustedFile(path) != nil {
		// Root runs no program that someone else could have put there.
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.WaitDelay = time.Second
	out := &untrusted.Buffer{Limit: 64 << 10}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		return ""
	}
	return ParseVersion(string(out.Bytes()))
}
