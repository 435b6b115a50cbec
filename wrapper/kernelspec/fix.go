package kernelspec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// FixOptions say what Fix may change.
type FixOptions struct {
	Checker
	KeepNV bool // keep a hard-coded GPU flag instead of deferring to job-time detection
}

// Repair is a planned change to one kernel.json.
type Repair struct {
	Kernel  *Kernel
	After   []byte
	Changes []string // one line per change, for people
}

// ErrNothingToFix says a kernel needs no repair that fix knows how to make.
var ErrNothingToFix = errors.New("nothing to fix")

// PlanFix works out the repaired kernel.json without touching the disk.
func PlanFix(k *Kernel, opts FixOptions) (*Repair, error) {
	rep := &Repair{Kernel: k}
	spec := k.Spec
	if spec == nil {
		s := straightened(k)
		if s == nil {
			return nil, fmt.Errorf("cannot repair: %w", k.Err)
		}
		spec = s.Spec
		rep.Changes = append(rep.Changes, "replaced curly quotes with straight ones")
	}
	if IsContainer(spec) && len(spec.Argv) > 0 {
		if err := fixContainer(rep, spec, opts); err != nil {
			return nil, fmt.Errorf("%s: %w", k.File(), err)
		}
	}
	if len(rep.Changes) == 0 {
		return nil, ErrNothingToFix
	}
	after, err := spec.Encode()
	if err != nil {
		return nil, fmt.Errorf("%s: encoding: %w", k.File(), err)
	}
	rep.After = after
	return rep, nil
}

// fixing is one container kernel under repair: what each rule's repair
// reads and changes.
type fixing struct {
	spec *Spec
	cmd  *apptainer.Command
	meta Meta
	opts FixOptions
}

func fixContainer(rep *Repair, spec *Spec, opts FixOptions) error {
	cmd, err := apptainer.Parse(spec.Argv)
	if err != nil {
		return fmt.Errorf("cannot read the container command: %w", err)
	}
	meta, _, err := spec.Sifkernel()
	if err != nil {
		return err
	}
	f := &fixing{spec: spec, cmd: cmd, meta: meta, opts: opts}
	for _, r := range rules {
		if r.repair == nil {
			continue
		}
		change, err := r.repair(f)
		if err != nil {
			return err
		}
		if change != "" {
			rep.Changes = append(rep.Changes, change)
		}
	}
	spec.Argv = cmd.Argv()
	return nil
}

// repairStaleRuntime points argv[0] at this node's Apptainer (stale-apptainer).
func repairStaleRuntime(f *fixing) (string, error) {
	rt := f.opts.Runtime
	if f.opts.staleRuntime(f.cmd.Runtime) == nil {
		return "", nil
	}
	change := fmt.Sprintf("argv[0]: %s (missing) -> %s (%s)", f.cmd.Runtime, rt.Path, versionOr(rt.Version))
	f.cmd.Runtime = rt.Path
	return change, nil
}

// repairGPUFlag removes a hard-coded GPU flag and lets each job decide
// (nv-hardcoded), unless --keep-nv.
func repairGPUFlag(f *fixing) (string, error) {
	gpu := f.opts.gpuFlag()
	if f.opts.KeepNV || f.meta.GPU == GPUAlways || !f.cmd.Remove(gpu) {
		return "", nil
	}
	f.meta.GPU = GPUAuto
	if err := f.spec.SetSifkernel(f.meta); err != nil {
		return "", err
	}
	return fmt.Sprintf("removed %s: each job adds it on GPU nodes (metadata.sifkernel.gpu = %q)", gpu, GPUAuto), nil
}

// repairConnectionDir binds the connection file's directory (connection-dir).
func repairConnectionDir(f *fixing) (string, error) {
	rt := f.opts.Env.RuntimeDir()
	if f.cmd.Sees(rt, f.opts.Env.Home) {
		return "", nil
	}
	src := existingAncestor(rt)
	f.cmd.Add("--bind", src)
	return fmt.Sprintf("added --bind %s so the connection file in %s is visible", src, rt), nil
}

// existingAncestor gives dir, or its nearest existing parent other than /,
// since Apptainer refuses to bind a source that does not exist.
func existingAncestor(dir string) string {
	for d := filepath.Clean(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return dir
}

// Diff is a unified diff from the file on disk to the repaired one.
func (r *Repair) Diff() string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(r.Kernel.Raw)), B: difflib.SplitLines(string(r.After)),
		FromFile: r.Kernel.File(), ToFile: r.Kernel.File() + " (fixed)", Context: 3,
	})
	return d
}

// Apply keeps a backup of the original, then replaces kernel.json atomically.
// If the file changed since it was read, nothing is written. On any failure
// the original is left as it was.
func (r *Repair) Apply(now time.Time) (backup string, err error) {
	path := r.Kernel.File()
	current, err := fsx.ReadRegular(path, MaxFileSize, false)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(current, r.Kernel.Raw) {
		return "", fmt.Errorf("%s changed since it was read; run fix again", path)
	}
	if backup, err = Backup(path, current, now); err != nil {
		return "", err
	}
	if err := WriteFile(path, r.After, FileMode); err != nil {
		return backup, err
	}
	return backup, nil
}
