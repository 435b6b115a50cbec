package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// CleanupOptions say what a user-side cleanup removes.
type CleanupOptions struct {
	Job        slurm.JobID `json:"job"`
	RootJobDir bool        `json:"root_job_dir"` // a Prolog made jobs/<job>: empty it (root removes it)
	GC         bool        `json:"gc"`           // evict unreferenced entries past keep_warm
}

// Cleanup is the user's side of an Epilog or of `run`: remove the contents
// of the job directory (and the user's own job directory for the job),
// release the job's refs, and collect garbage. It runs as the job user and
// checks before it removes: the job id, the cache root (root's alone, see
// cache.OpenTree) and that the job directory is its own. It removes through
// descriptors, never following a symbolic link, and reports what it could
// not remove.
func (e *Env) Cleanup(o CleanupOptions) error {
	if o.Job.IsZero() {
		return errors.New("cleanup: no job")
	}
	var errs []error
	if o.RootJobDir {
		errs = append(errs, e.emptyRootJobDir(o.Job))
	}
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, removeJobFiles(ch.Dir(), o.Job))
	errs = append(errs, ch.Release(o.Job))
	if o.GC {
		_, err := ch.GC(cache.GCOptions{Now: e.Now()})
		errs = append(errs, err)
		if n := reapHolders(ch.Dir()); n > 0 {
			e.Log.WithField("job", o.Job).Warnf("killed %d leftover processes of ended jobs holding evicted images open (orphaned squashfuse?)", n)
		}
	}
	return errors.Join(errs...)
}

// emptyRootJobDir removes what is inside jobs/<job>, which must be the
// calling user's directory in a verified cache root.
func (e *Env) emptyRootJobDir(job slurm.JobID) error {
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		return err
	}
	defer tree.Close()
	err = tree.EmptyOwnJobDir(job, time.Now().Add(cleanupBudget))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// cleanupBudget bounds how long the user's side of a cleanup removes; the
// hook gives the child a little more, then removes the rest itself.
const cleanupBudget = 20 * time.Second

// removeJobFiles removes jobs/<job> and jobs/<job>.lock in the user's
// cache directory dir (see fsx.RemoveTree: no link followed, no mount
// crossed, any depth, the owner's bits put right). Missing ones are fine.
func removeJobFiles(dir string, jobs ...slurm.JobID) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	jd, _, err := fsx.OpenDirAt(d, cache.JobsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer jd.Close()
	opts := fsx.RemoveOptions{Deadline: time.Now().Add(cleanupBudget)}
	var errs []error
	for _, j := range jobs {
		errs = append(errs, fsx.RemoveTree(jd, j.String(), opts), fsx.RemoveTree(jd, j.String()+".lock", opts))
	}
	return errors.Join(errs...)
}
