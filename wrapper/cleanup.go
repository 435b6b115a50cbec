package wrapper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/cache"
)

// CleanupOptions say what a user-side cleanup removes.
type CleanupOptions struct {
	Job    string
	JobDir string // the Prolog's job directory, emptied (root removes it)
	GC     bool   // evict unreferenced entries past keep_warm
}

// Cleanup is the user's side of an Epilog or of `run`: remove the contents
// of the job directory (and the user's own job directory for the job),
// release the job's refs, and collect garbage. It runs as the job user.
func (e *Env) Cleanup(o CleanupOptions) error {
	var errs []error
	if o.JobDir != "" {
		errs = append(errs, emptyDir(o.JobDir))
	}
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, os.RemoveAll(userJobDir(ch, o.Job)), ignoreMissing(os.Remove(userJobDir(ch, o.Job)+".lock")))
	errs = append(errs, ch.Release(o.Job))
	if o.GC {
		_, err := ch.GC(cache.GCOptions{Now: e.Now()})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// emptyDir removes everything inside dir but dir itself.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, de.Name())))
	}
	return errors.Join(errs...)
}

// SweepUser is the user's side of sweep: release the refs of jobs that no
// longer run here, remove the user's job directories of those jobs, and
// remove copies left by stagers that died.
func (e *Env) SweepUser(running map[string]bool) (cache.GCReport, error) {
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return cache.GCReport{}, err
	}
	gone := map[string]bool{}
	refs, _ := os.ReadDir(filepath.Join(ch.Dir(), "refs"))
	for _, k := range refs {
		jobs, _ := os.ReadDir(filepath.Join(ch.Dir(), "refs", k.Name()))
		for _, j := range jobs {
			if !running[j.Name()] {
				gone[j.Name()] = true
			}
		}
	}
	dirs, _ := os.ReadDir(filepath.Join(ch.Dir(), "jobs"))
	var errs []error
	for _, d := range dirs {
		job := strings.TrimSuffix(d.Name(), ".lock")
		if cache.ValidJob(job) != nil || running[job] {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(ch.Dir(), "jobs", d.Name())))
	}
	jobs := make([]string, 0, len(gone))
	for j := range gone {
		jobs = append(jobs, j)
	}
	r, err := ch.GC(cache.GCOptions{Jobs: jobs, Now: e.Now()})
	if err != nil {
		errs = append(errs, fmt.Errorf("gc: %w", err))
	}
	return r, errors.Join(errs...)
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
