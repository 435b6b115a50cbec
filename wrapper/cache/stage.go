package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Result says where an image can be used from after Stage.
type Result struct {
	Source string `json:"source"`
	Path   string `json:"path"` // the entry, or the source when it was not staged
	Key    string `json:"key,omitempty"`
	Staged bool   `json:"staged"` // Path is a cache entry
	Copied bool   `json:"copied"` // this call wrote it; false for a cache hit
	// Resumed is how much of that copy an earlier one, cut off by its
	// deadline, had made: this call copied the rest.
	Resumed int64         `json:"resumed_bytes,omitempty"`
	Bytes   int64         `json:"bytes"`
	Took    time.Duration `json:"took_ns"`
	Reason  string        `json:"reason,omitempty"` // why it was not staged
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
// uses it. It gives up when ctx ends or the stage timeout passes (a cached
// image is used all the same): the error then says to use the source, and
// what was copied is kept for the next stager of the same image on the
// node, which resumes it (see partialPath).
func (c *Cache) Stage(ctx context.Context, image string, job slurm.JobID, progress Progress) (Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.StageTimeout)
	defer cancel()
	src, res, err := c.begin(image)
	if err != nil {
		return res, err
	}
	defer src.f.Close()
	copied, resumed, err := c.stageLocked(ctx, src, res.Key, job, progress)
	if err != nil {
		return res, err
	}
	res.Path, res.Staged, res.Copied, res.Resumed, res.Took = c.entryPath(res.Key), true, copied, resumed, time.Since(start)
	return res, nil
}

// begin opens the image (for the site cache, only a public one: see
// openSiteSource); the result points at the source until the image is
// staged.
func (c *Cache) begin(image string) (*source, Result, error) {
	res := Result{Source: image, Path: image}
	open := openSource
	if c.opts.Site {
		open = func(p string) (*source, error) { return openSiteSource(p, c.opts.SiteDirs, c.opts.SiteOwners) }
	}
	src, err := open(image)
	if err != nil {
		return nil, res, err
	}
	res.Key, res.Bytes = src.key(), src.size
	return src, res, nil
}

// stageLocked uses or makes key's entry under key's lock. It says whether
// it copied, and how many bytes of that copy an earlier, cut-off one made.
func (c *Cache) stageLocked(ctx context.Context, src *source, key string, job slurm.JobID, progress Progress) (copied bool, resumed int64, err error) {
	lock := NewLock(c.lockPath(key))
	defer lock.Close()
	// A shared lock is enough to use a published entry; it waits for a copy
	// in progress and keeps eviction away while the ref is recorded.
	// A cached image is used even when ctx has ended: that takes no time.
	if ok, err := tryLocked(lock, lock.TryRLock); !ok && err == nil {
		if ok, err := tryLocked(lock, func() (bool, error) { return lock.TryRLockContext(ctx, lockRetry) }); !ok {
			return false, 0, lockError(ctx, err, key)
		}
	} else if err != nil {
		return false, 0, lockError(ctx, err, key)
	}
	if c.published(key, src) {
		return false, 0, c.use(key, job)
	}
	if err := lock.Unlock(); err != nil {
		return false, 0, err
	}
	if err := ctx.Err(); err != nil {
		return false, 0, fmt.Errorf("%w: no time left to copy %s", ErrTimeout, src.path)
	}
	if ok, err := tryLocked(lock, func() (bool, error) { return lock.TryLockContext(ctx, lockRetry) }); !ok {
		return false, 0, lockError(ctx, err, key)
	}
	if c.published(key, src) {
		return false, 0, c.use(key, job)
	}
	defer func() {
		if err != nil {
			c.dropLock(key) // nothing of key was made (or a cut-off copy is kept)
		}
	}()
	if err := ctx.Err(); err != nil {
		return false, 0, fmt.Errorf("%w: no time left to copy %s", ErrTimeout, src.path)
	}
	tmp, have, err := c.openTemp(key, src)
	if err != nil {
		return false, 0, err
	}
	if err := c.makeRoom(src.size-have, key); err != nil {
		c.discard(tmp)
		return false, 0, err
	}
	if err := c.publish(ctx, tmp, have, src, key, progress); err != nil {
		return false, 0, err
	}
	return true, have, c.use(key, job)
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

// publish copies src into tmp (which holds its first have bytes already),
// checks it, and renames it into place. A copy cut off by ctx is kept for
// the next stager of the same source to resume (see keepPartial); on any
// other failure tmp is removed.
func (c *Cache) publish(ctx context.Context, tmp *os.File, have int64, src *source, key string, progress Progress) (err error) {
	defer func() {
		switch {
		case err == nil:
			_ = tmp.Close()
		case errors.Is(err, ErrTimeout) && c.keepPartial(tmp, key, src):
			err = fmt.Errorf("%w (what was copied is kept: the next stager of this image on the node resumes it)", err)
		default:
			c.discard(tmp)
		}
	}()
	sum, err := c.copy(ctx, tmp, src, have, progress)
	if err != nil {
		return err
	}
	if err := c.check(tmp, src); err != nil {
		return err
	}
	return c.install(tmp, src, key, sum)
}

// discard closes and removes a temporary copy.
func (c *Cache) discard(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// partialPath is where a copy of src cut off by its deadline waits for
// the next stager of the same file: .tmp-<key>-part<stamp>. Only a copy
// that was synced when it stopped carries this name, so its bytes are on
// disk even after the node crashed; a copy in progress has a random name.
func (c *Cache) partialPath(key string, src *source) string {
	return filepath.Join(c.dir, ".tmp-"+key+"-part"+src.stamp())
}

// openTemp gives the temporary file to copy src into, and how many of its
// bytes are there already: the copy of this very source a stager cut off
// by its deadline left (renamed to a name of this stager's own first, so
// that a crash while it grows never leaves an unsynced file under the
// resumable name), else a new empty one. Whatever else a stager of key
// left is removed. The caller holds key's lock.
func (c *Cache) openTemp(key string, src *source) (*os.File, int64, error) {
	tmp, err := os.CreateTemp(c.dir, ".tmp-"+key+"-*")
	if err != nil {
		return nil, 0, fmt.Errorf("staging %s: %w", src.path, err)
	}
	part := c.partialPath(key, src)
	// Rename the partial copy over the new empty file, then reopen.
	if os.Rename(part, tmp.Name()) != nil {
		c.removeTemps(key, tmp.Name())
		return tmp, 0, nil
	}
	_ = tmp.Close()
	c.removeTemps(key, tmp.Name())
	// The directory is this stager's own; the checks are for a file that is
	// not what a stager leaves all the same (a FIFO must not block it).
	f, err := os.OpenFile(tmp.Name(), os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && (!st.Mode().IsRegular() || st.Size() > src.size || !ownedByMe(st)) {
			err = fmt.Errorf("%v, %d bytes, not a regular file of uid %d's no longer than the image", st.Mode(), st.Size(), os.Geteuid())
		}
		if err == nil {
			c.log.Infof("staging %s: resuming a copy cut off earlier, %s of %s there", src.path, HumanBytes(st.Size()), HumanBytes(src.size))
			return f, st.Size(), nil
		}
		_ = f.Close()
	}
	// Not a copy this stager could have made: start afresh.
	c.log.Warnf("staging %s: not resuming %s: %v", src.path, part, err)
	_ = os.Remove(tmp.Name())
	tmp, err = os.CreateTemp(c.dir, ".tmp-"+key+"-*")
	if err != nil {
		return nil, 0, fmt.Errorf("staging %s: %w", src.path, err)
	}
	return tmp, 0, nil
}

// keepPartial makes tmp, a copy cut off by its deadline, the resumable
// copy of src: synced first, so that what its size says is on disk.
func (c *Cache) keepPartial(tmp *os.File, key string, src *source) bool {
	if src.changed() || tmp.Sync() != nil {
		return false
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp.Name(), unix.AT_FDCWD, c.partialPath(key, src), unix.RENAME_NOREPLACE); err != nil {
		return false
	}
	_ = tmp.Close()
	// The rename's durability only decides whether a crash loses the
	// progress (the copy is then made again); nothing to undo if it fails.
	_ = fsx.SyncDir(c.dir)
	return true
}

func ownedByMe(st os.FileInfo) bool {
	o, ok := fsx.OwnerOf(st)
	return ok && o.UID == os.Geteuid()
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
	if err := fsx.Adopt(f, c.entryPath(key)).Publish(mode, fsx.Durable); err != nil {
		return fmt.Errorf("staging %s: %w", src.path, err)
	}
	now := time.Now().UTC()
	return c.writeMeta(Meta{Key: key, Source: src.real, Size: src.size, MTime: src.mtime.UTC(), SIFID: src.sifID, SHA256: sum, StagedAt: now,
		Dev: src.dev, Ino: src.ino, CTime: src.ctime.UTC(), UID: src.uid})
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

// removeTemps deletes copies of key left by stagers that died or were
// cut off (other than keep, this stager's own). The caller holds key's
// lock, so none of them is in progress.
func (c *Cache) removeTemps(key, keep string) int {
	names, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-"+key+"-*"))
	n := 0
	for _, name := range names {
		if name != keep && os.Remove(name) == nil {
			n++
		}
	}
	return n
}
