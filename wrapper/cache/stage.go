package cache

import (
	"github.com/sifkernel/sifkernel/wrapper/sifimage"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Result says where an image can be used from after Stage.
type Result struct {
	Source string        `json:"source"`
	Path   string        `json:"path"` // the entry, or the source when it was not staged
	Key    string        `json:"key,omitempty"`
	Staged bool          `json:"staged"` // Path is a cache entry
	Copied bool          `json:"copied"` // this call wrote it; false for a cache hit
	Bytes  int64         `json:"bytes"`
	Took   time.Duration `json:"took_ns"`
	Reason string        `json:"reason,omitempty"` // why it was not staged
	// Site: Path is the site cache's copy, every user's; SiteNote says why
	// an image was staged for the user alone instead.
	Site     bool   `json:"site,omitempty"`
	SiteNote string `json:"site_note,omitempty"`
}

// Progress is told how many bytes of total have been copied.
type Progress func(done, total int64)

// lockRetry is how often a waiting stager retries the entry lock.
const lockRetry = 20 * time.Millisecond

// Stage makes a node-local copy of image (or finds one) and records that job
// uses it. It gives up when ctx ends or the stage timeout passes; the copy
// in progress is then removed and the error says to use the source.
func (c *Cache) Stage(ctx context.Context, image string, job slurm.JobID, progress Progress) (Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.StageTimeout)
	defer cancel()
	src, res, err := c.begin(image)
	if err != nil {
		return res, err
	}
	defer src.f.Close()
	copied, err := c.stageLocked(ctx, src, res.Key, job, progress)
	if err != nil {
		return res, err
	}
	res.Path, res.Staged, res.Copied, res.Took = c.entryPath(res.Key), true, copied, time.Since(start)
	return res, nil
}

// begin opens the image (for the site cache, only a public one: see
// openPublicSource); the result points at the source until the image is
// staged.
func (c *Cache) begin(image string) (*source, Result, error) {
	res := Result{Source: image, Path: image}
	open := openSource
	if c.opts.Site {
		open = func(p string) (*source, error) { return openPublicSource(p, c.opts.SiteDirs) }
	}
	src, err := open(image)
	if err != nil {
		return nil, res, err
	}
	res.Key, res.Bytes = src.key(), src.size
	return src, res, nil
}

func (c *Cache) stageLocked(ctx context.Context, src *source, key string, job slurm.JobID, progress Progress) (bool, error) {
	lock := NewLock(c.lockPath(key))
	defer lock.Close()
	// A shared lock is enough to use a published entry; it waits for a copy
	// in progress and keeps eviction away while the ref is recorded.
	if ok, err := lock.TryRLockContext(ctx, lockRetry); !ok {
		return false, lockError(ctx, err, key)
	}
	if c.published(key, src) {
		return false, c.use(key, job)
	}
	if err := lock.Unlock(); err != nil {
		return false, err
	}
	if ok, err := lock.TryLockContext(ctx, lockRetry); !ok {
		return false, lockError(ctx, err, key)
	}
	if c.published(key, src) {
		return false, c.use(key, job)
	}
	c.removeTemps(key) // a stager that died left them; we hold the lock
	if err := c.makeRoom(src.size, key); err != nil {
		return false, err
	}
	if err := c.publish(ctx, src, key, progress); err != nil {
		return false, err
	}
	return true, c.use(key, job)
}

func (c *Cache) use(key string, job slurm.JobID) error {
	c.touch(key, time.Now())
	return c.ref(key, job)
}

func lockError(ctx context.Context, err error, key string) error {
	if err == nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: waited for another stager of %s", ErrTimeout, key)
	}
	return fmt.Errorf("locking %s: %w", key, err)
}

// ErrTimeout says staging took longer than allowed; use the source.
var ErrTimeout = errors.New("stage timeout")

// publish copies src into a temporary file beside the entry, checks it, and
// renames it into place. On any failure the temporary file is removed.
func (c *Cache) publish(ctx context.Context, src *source, key string, progress Progress) (err error) {
	tmp, err := os.CreateTemp(c.dir, ".tmp-"+key+"-*")
	if err != nil {
		return fmt.Errorf("staging %s: %w", src.path, err)
	}
	defer func() {
		tmp.Close()
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	sum, err := c.copy(ctx, tmp, src, progress)
	if err != nil {
		return err
	}
	if err := c.check(tmp, src); err != nil {
		return err
	}
	return c.install(tmp, src, key, sum)
}

// install makes f, a checked copy of src, the entry for key: read-only,
// synced, renamed into place with the rename made durable, then its
// metadata. sum is the copy's SHA-256 where it was computed while copying
// ("" for an adopted copy). Staging and adopting both end here.
func (c *Cache) install(f *os.File, src *source, key, sum string) error {
	mode := os.FileMode(0o400)
	if c.opts.Site {
		mode = 0o444 // every user reads the site's copy
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("staging %s: sync: %w", src.path, err)
	}
	if err := os.Rename(f.Name(), c.entryPath(key)); err != nil {
		return fmt.Errorf("moving %s into %s: %w", f.Name(), c.dir, err)
	}
	if err := fsx.SyncDir(c.dir); err != nil {
		return err
	}
	now := time.Now().UTC()
	return c.writeMeta(Meta{Key: key, Source: src.real, Size: src.size, MTime: src.mtime.UTC(), SIFID: src.sifID, SHA256: sum, StagedAt: now})
}

// check verifies a finished copy: the byte count, an unchanged source, and
// for SIF images a usable header with the same id.
func (c *Cache) check(tmp *os.File, src *source) error {
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	if src.changed() {
		return fmt.Errorf("staging %s: the image changed while it was copied; try again", src.path)
	}
	if st.Size() != src.size {
		return fmt.Errorf("staging %s: copied %d of %d bytes", src.path, st.Size(), src.size)
	}
	if src.sifID == "" {
		return nil
	}
	info, err := sifimage.Inspect(tmp)
	if err != nil {
		return fmt.Errorf("staging %s: the copy is not a valid SIF: %w", src.path, err)
	}
	if info.ID != src.sifID {
		return fmt.Errorf("staging %s: the copy has SIF id %s, the source %s", src.path, info.ID, src.sifID)
	}
	return nil
}

// removeTemps deletes copies of key left by a stager that died. The caller
// holds key's lock, so none of them is in progress.
func (c *Cache) removeTemps(key string) int {
	names, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-"+key+"-*"))
	for _, n := range names {
		_ = os.Remove(n)
	}
	return len(names)
}
