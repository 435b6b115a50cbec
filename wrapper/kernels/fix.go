package kernels

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// FixOptions say what `kernel fix` repairs.
type FixOptions struct {
	Names  []string // "" means every kernel the user may write
	DryRun bool
	KeepNV bool
}

// Fixed is what became of one kernel that needed a repair.
type Fixed struct {
	Entry   kernelspec.Entry
	Diff    string
	Changes []string
	Backup  string // where the original was kept; "" on a dry run or failure
	Err     error  // the repair could not be planned or written
	Nothing bool   // a kernel named that needs no repair
}

// Fix plans (and unless DryRun applies) the repairs check knows, calling
// each for every kernel that needed one, failed, or was named, in order, as it goes.
// Without names, kernels in directories the user cannot write (a site's)
// are left alone. It returns how many it fixed and every error.
func (u *User) Fix(ctx context.Context, o FixOptions, each func(Fixed)) (int, error) {
	entries, err := u.Select(o.Names)
	if err != nil {
		return 0, err
	}
	opts := kernelspec.FixOptions{Checker: u.Checker(ctx), KeepNV: o.KeepNV}
	var failed []error
	fixed := 0
	for _, en := range entries {
		if len(o.Names) == 0 && unix.Access(en.Dir, unix.W_OK) != nil {
			continue // not ours to change: a site-wide kernel
		}
		rep, err := kernelspec.PlanFix(en.Kernel, opts)
		switch {
		case errors.Is(err, kernelspec.ErrNothingToFix):
			if len(o.Names) > 0 {
				each(Fixed{Entry: en, Nothing: true})
			}
			continue
		case err != nil:
			failed = append(failed, err)
			each(Fixed{Entry: en, Err: err})
			continue
		}
		f := Fixed{Entry: en, Diff: rep.Diff(), Changes: rep.Changes}
		if !o.DryRun {
			f.Backup, f.Err = rep.Apply(u.Now())
			if f.Err != nil {
				failed = append(failed, f.Err)
			} else {
				fixed++
			}
		}
		each(f)
	}
	return fixed, errors.Join(failed...)
}
