package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Adopt publishes a copy of image that something else wrote to this node
// (sbcast, for `stage --bcast`) as the entry of image, after the same checks
// a copy of its own gets: size, SIF header and id. The copy must be on the
// cache's filesystem; it is renamed, or removed if the entry exists already.
func (c *Cache) Adopt(ctx context.Context, image, copyPath string, job slurm.JobID) (Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.StageTimeout)
	defer cancel()
	if c.opts.Site {
		return Result{Source: image, Path: image}, errors.New("the site cache adopts no copy: it makes its own")
	}
	src, res, err := c.begin(image)
	if err != nil {
		return res, err
	}
	defer src.f.Close()
	lock := NewLock(c.lockPath(res.Key))
	defer lock.Close()
	if ok, err := tryLocked(lock, func() (bool, error) { return lock.TryLockContext(ctx, lockRetry) }); !ok {
		return res, lockError(ctx, err, res.Key)
	}
	copied, err := c.adoptLocked(src, res.Key, copyPath)
	if err != nil {
		_ = os.Remove(copyPath)
		return res, err
	}
	if err := c.use(res.Key, job); err != nil {
		return res, err
	}
	res.Path, res.Staged, res.Copied, res.Took = c.entryPath(res.Key), true, copied, time.Since(start)
	return res, nil
}

func (c *Cache) adoptLocked(src *source, key, copyPath string) (bool, error) {
	if c.published(key, src) {
		return false, os.Remove(copyPath)
	}
	f, err := fsx.OpenRegular(copyPath, true)
	if err != nil {
		return false, fmt.Errorf("adopting %s: %w", copyPath, err)
	}
	defer f.Close()
	if err := c.check(f, src); err != nil {
		return false, err
	}
	if err := c.makeRoom(0, key); err != nil {
		return false, err
	}
	return true, c.install(f, src, key, "")
}
