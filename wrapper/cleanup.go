package wrapper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/sifkernel/sifkernel/slurm"
	"github.com/sifkernel/sifkernel/wrapper/cache"
)

// CleanupOptions say what a user-side cleanup removes.
type CleanupOptions struct {
	Job        string `json:"job"`
	RootJobDir bool   `json:"root_job_dir"` // a Prolog made jobs/<job>: empty it (root removes it)
	GC         bool   `json:"gc"`           // evict unreferenced entries past keep_warm
}

// Cleanup is the user's side of an Epilog or of `run`: remove the contents
// of the job directory (and the user's own job directory for the job),
// release the job's refs, and collect garbage. It runs as the job user and
// checks before it removes: the job id, the cache root (root's alone, see
// cache.OpenTree) and that the job directory is its own. It removes through
// descriptors, never following a symbolic link, and reports what it could
// not remove.
func (e *Env) Cleanup(o CleanupOptions) error {
	if err := slurm.ValidJobID(o.Job); err != nil {
		return err
	}
	var errs []error
	if o.RootJobDir {
		errs = append(errs, e.emptyRootJobDir(o.Job))
	}
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, removeInside(ch.Dir(), path.Join("jobs", o.Job), path.Join("jobs", o.Job+".lock")))
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
func (e *Env) emptyRootJobDir(job string) error {
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		return err
	}
	defer tree.Close()
	d, err := tree.OpenOwnJobDir(job)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", tree.JobDir(job), err)
	}
	var errs []error
	for _, n := range names {
		if err := d.RemoveAll(n); err != nil {
			errs = append(errs, fmt.Errorf("removing %s/%s: %w", tree.JobDir(job), n, err))
		}
	}
	return errors.Join(errs...)
}

// removeInside removes names (and what is below them) inside dir, through
// an os.Root of dir: no symbolic link is followed. Missing names are fine.
func removeInside(dir string, names ...string) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for _, n := range names {
		if err := r.RemoveAll(n); err != nil {
			errs = append(errs, fmt.Errorf("removing %s/%s: %w", dir, n, err))
		}
	}
	return errors.Join(errs...)
}
