package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"

	"github.com/shirou/gopsutil/v3/disk"
	"golang.org/x/sys/unix"
)

// defaultChunk is how much is copied between checks of the context and
// progress reports. *os.File.ReadFrom of an io.LimitedReader over an
// *os.File still uses copy_file_range (and so reflinks where the filesystem
// can). It is 1 GiB, the most Go asks copy_file_range for in one call
// anyway: smaller steps measured 10-25% slower on 4 GiB images (ext4, cold
// cache), and a stage timeout may overrun by one step (about a second on
// local disks).
const defaultChunk int64 = 1 << 30

// seams are the parts of one Cache a test replaces to play faults, slow
// copies and small or full disks; Open sets the real ones. They are fields,
// not package variables: nothing in the binary root runs can change them.
type seams struct {
	chunk     int64
	copyChunk func(ctx context.Context, dst *os.File, src io.Reader) (int64, error)
	diskUsage func(path string) (*disk.UsageStat, error)
}

func realSeams() seams {
	return seams{
		chunk:     defaultChunk,
		copyChunk: func(_ context.Context, dst *os.File, src io.Reader) (int64, error) { return dst.ReadFrom(src) },
		diskUsage: disk.Usage,
	}
}

// copy copies src into dst in chunks, hashing when verify is sha256, and
// stops at a chunk boundary when ctx ends. It returns the hex digest, if any.
func (c *Cache) copy(ctx context.Context, dst *os.File, src *source, progress Progress) (string, error) {
	if _, err := src.f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	// As cp does: the source is read once, front to back, so the kernel
	// may read ahead further. Only a hint; an error changes nothing.
	_ = unix.Fadvise(int(src.f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	var h hash.Hash
	if c.opts.Verify == "sha256" {
		h = sha256.New()
	}
	var done int64
	for done < src.size {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("%w: staging %s stopped after %d of %d bytes", ErrTimeout, src.path, done, src.size)
		}
		n, err := c.copyOne(ctx, dst, src, h)
		done += n
		if progress != nil {
			progress(done, src.size)
		}
		if err != nil {
			return "", copyError(src.path, err)
		}
		if n == 0 {
			break // the source is shorter than it was: check reports it
		}
	}
	if h == nil {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (c *Cache) copyOne(ctx context.Context, dst *os.File, src *source, h hash.Hash) (int64, error) {
	lr := &io.LimitedReader{R: src.f, N: c.seams.chunk}
	if h == nil {
		return c.seams.copyChunk(ctx, dst, lr)
	}
	return io.CopyBuffer(io.MultiWriter(dst, h), lr, make([]byte, 1<<20))
}

func copyError(path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: staging %s: %v", ErrNoSpace, path, err)
	}
	return fmt.Errorf("staging %s: %w", path, err)
}
