package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

func (c *Cache) refDir(key string) string { return filepath.Join(c.refsBase, key) }

// ref marks that job uses the entry key.
func (c *Cache) ref(key string, job slurm.JobID) error {
	if job.IsZero() || c.opts.Site { // root records the site cache's refs
		return nil
	}
	var err error
	// Release removes empty ref directories; if it takes this one between
	// Mkdir and OpenFile, make it again.
	for range 3 {
		for _, d := range []string{c.refsBase, c.refDir(key)} {
			if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("recording ref: %w", err)
			}
		}
		var f *os.File
		// A FIFO in the ref's place must not block (O_NONBLOCK: no reader, ENXIO).
		if f, err = os.OpenFile(filepath.Join(c.refDir(key), job.String()), os.O_CREATE|os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0o600); err == nil {
			return f.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return fmt.Errorf("recording ref: %w", err)
}

// refs lists the jobs that use key.
func (c *Cache) refs(key string) ([]string, error) {
	ents, err := os.ReadDir(c.refDir(key))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// Release drops every ref of job. Running it again does nothing.
func (c *Cache) Release(job slurm.JobID) error {
	if job.IsZero() {
		return errors.New("release: no job")
	}
	keys, err := os.ReadDir(c.refsBase)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		err := os.Remove(filepath.Join(c.refDir(k.Name()), job.String()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		_ = os.Remove(c.refDir(k.Name())) // only succeeds once empty
	}
	return errors.Join(errs...)
}
