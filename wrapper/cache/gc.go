package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// GCOptions say what gc removes.
type GCOptions struct {
	DryRun bool
	All    bool          // every unreferenced entry, however recently used
	Jobs   []slurm.JobID // release these jobs' refs first (jobs that ended without an epilog)
	Now    time.Time
}

// GCReport lists what gc removed (or, in a dry run, would remove).
type GCReport struct {
	Entries []string      `json:"entries"`
	Temps   []string      `json:"temps"`
	Orphans []string      `json:"orphans"` // metadata without an entry
	Jobs    []slurm.JobID `json:"jobs"`
	Freed   int64         `json:"freed"`
}

// GC removes unreferenced entries not used for keep_warm (all of them with
// All), copies left by stagers that died, and orphaned metadata.
func (c *Cache) GC(o GCOptions) (GCReport, error) {
	r := GCReport{Entries: []string{}, Temps: []string{}, Orphans: []string{}, Jobs: []slurm.JobID{}}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var errs []error
	for _, j := range o.Jobs {
		if !o.DryRun {
			if err := c.Release(j); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		r.Jobs = append(r.Jobs, j)
	}
	errs = append(errs, c.gcTemps(&r, o), c.gcOrphans(&r, o.DryRun), c.gcEntries(&r, o))
	return r, errors.Join(errs...)
}

func (c *Cache) gcEntries(r *GCReport, o GCOptions) error {
	entries, err := c.Entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if len(e.Refs) > 0 && !(o.DryRun && refsReleased(e.Refs, o.Jobs)) {
			continue
		}
		if !o.All && c.opts.KeepWarm > 0 && o.Now.Sub(e.LastUsed) < c.opts.KeepWarm {
			continue
		}
		if !o.DryRun {
			ok, err := c.evict(e.Key)
			if err != nil {
				return err
			}
			if !ok {
				continue // in use right now
			}
		}
		r.Entries = append(r.Entries, e.Key)
		r.Freed += e.Size
	}
	return nil
}

// refsReleased reports whether a dry run's released jobs cover all refs.
func refsReleased(refs []string, jobs []slurm.JobID) bool {
	for _, ref := range refs {
		found := false
		for _, j := range jobs {
			found = found || ref == j.String()
		}
		if !found {
			return false
		}
	}
	return true
}

// PartialKeep is how long a copy cut off by a deadline waits for the next
// stager of its image on the node to resume it (see Cache.partialPath):
// past it, or at gc --all, gc removes it, as it removes copies whose
// stager died.
const PartialKeep = 72 * time.Hour

// gcTemps removes copies whose stager is gone (their lock is free), but
// a cut-off copy touched within PartialKeep.
func (c *Cache) gcTemps(r *GCReport, o GCOptions) error {
	names, err := filepath.Glob(filepath.Join(c.dir, ".tmp-*"))
	if err != nil {
		return err
	}
	for _, n := range names {
		key, ok := tempKey(n)
		if !ok {
			continue
		}
		if !o.All && isPartial(n) && o.Now.Sub(modTime(n)) < PartialKeep {
			continue
		}
		lock := NewLock(c.lockPath(key))
		got, err := tryLocked(lock, lock.TryLock)
		if err != nil || !got {
			lock.Close()
			continue
		}
		size := fileSize(n)
		if o.DryRun || os.Remove(n) == nil {
			r.Temps = append(r.Temps, filepath.Base(n))
			r.Freed += size
		}
		if !o.DryRun {
			c.dropLock(key)
		}
		lock.Close()
	}
	return nil
}

// gcOrphans removes metadata left without its entry.
func (c *Cache) gcOrphans(r *GCReport, dryRun bool) error {
	names, err := filepath.Glob(filepath.Join(c.dir, "*.json"))
	if err != nil {
		return err
	}
	for _, n := range names {
		key := strings.TrimSuffix(filepath.Base(n), ".json")
		if _, err := os.Lstat(c.entryPath(key)); !errors.Is(err, fs.ErrNotExist) || !validKey(key) {
			continue
		}
		if ok, _ := c.orphanGone(key, dryRun); ok {
			r.Orphans = append(r.Orphans, key)
		}
	}
	return nil
}

func (c *Cache) orphanGone(key string, dryRun bool) (bool, error) {
	lock := NewLock(c.lockPath(key))
	defer lock.Close()
	if ok, err := tryLocked(lock, lock.TryLock); !ok {
		return false, err
	}
	if _, err := os.Lstat(c.entryPath(key)); !errors.Is(err, fs.ErrNotExist) {
		return false, nil // published meanwhile
	}
	if dryRun {
		return true, nil
	}
	err := os.Remove(c.metaPath(key))
	c.dropLock(key)
	return true, err
}

// isPartial says a temporary copy's name is a cut-off copy's (partialPath).
func isPartial(name string) bool {
	return strings.Contains(filepath.Base(name), "-part")
}

func modTime(p string) time.Time {
	st, err := os.Lstat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func fileSize(p string) int64 {
	st, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}
