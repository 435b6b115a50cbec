package cache

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/disk"
	"golang.org/x/sys/unix"
)

// Copy steps are sized by time, not bytes: each step (one copy_file_range
// call, through *os.File.ReadFrom of an io.LimitedReader over an *os.File,
// which still reflinks where the file system can) asks for what the rate
// measured so far moves in stepTarget, starting at firstStep (small: the
// source's speed is not known yet, and 256 KiB takes a second at 256
// KiB/s) and at most doubling from one step to the next, up to maxStep (1 GiB, the most Go asks
// copy_file_range for in one call anyway). The context is checked between
// steps, so a copy stops within about stepTarget of its deadline on a slow
// shared file system as on a fast local disk, where the steps grow to a few
// hundred megabytes and cost nothing measurable (testcluster/bench/cache.sh
// compares with cp in the same run). A source that slows down sharply in
// the middle of a step can still make that one step overrun; root's kill at
// the hook's deadline bounds it (see lifecycle's deadline).
const (
	stepTarget       = 250 * time.Millisecond
	firstStep  int64 = 256 << 10
	minStep    int64 = 256 << 10
	maxStep    int64 = 1 << 30
)

// seams are the parts of one Cache a test replaces to play faults, slow
// copies and small or full disks; Open sets the real ones. They are fields,
// not package variables: nothing in the binary root runs can change them.
type seams struct {
	chunk     int64 // the largest step
	copyChunk func(ctx context.Context, dst *os.File, src io.Reader) (int64, error)
	diskUsage func(path string) (*disk.UsageStat, error)
	// evicting runs between moving an entry aside and reading its refs
	// the last time (see evict); nil but in tests.
	evicting func(key string)
}

func realSeams() seams {
	return seams{
		chunk: maxStep,
		copyChunk: func(_ context.Context, dst *os.File, src io.Reader) (int64, error) {
			if _, plain := src.(*io.LimitedReader); plain {
				return dst.ReadFrom(src) // copy_file_range, or a reflink
			}
			return io.CopyBuffer(struct{ io.Writer }{dst}, src, make([]byte, 1<<20)) // hashed on the way
		},
		diskUsage: disk.Usage,
	}
}

// copy copies src into dst from offset from (what a copy cut off earlier
// left; dst holds those bytes), in steps sized by time (see stepTarget),
// hashing when verify is sha256, and stops between steps when ctx ends. It
// returns the hex digest of the whole image, if any.
func (c *Cache) copy(ctx context.Context, dst *os.File, src *source, from int64, progress Progress) (string, error) {
	var h hash.Hash
	if c.opts.Verify == "sha256" {
		h = sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(dst, 0, from)); err != nil {
			return "", fmt.Errorf("staging %s: reading back the %d bytes copied before: %w", src.path, from, err)
		}
	}
	for _, f := range []*os.File{src.f, dst} {
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return "", err
		}
	}
	// As cp does: the source is read once, front to back, so the kernel
	// may read ahead further. Only a hint; an error changes nothing.
	_ = unix.Fadvise(int(src.f.Fd()), from, 0, unix.FADV_SEQUENTIAL)
	streams, fsKind := streamsFor(c.opts.Streams, src.f)
	var srcs []*os.File
	if streams > 1 && h == nil { // a hash is taken in order: one stream
		var err error
		if srcs, err = openStreams(src.f, streams); err != nil {
			c.log.Warnf("staging %s: one stream (%v)", src.path, err)
		} else {
			defer closeStreams(srcs)
			c.log.Infof("staging %s from %s with %d streams", src.path, cmp.Or(fsKind, "its file system"), streams)
		}
	}
	done, step := from, min(firstStep, c.seams.chunk)
	for done < src.size {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("%w: staging %s stopped after %d of %d bytes", ErrTimeout, src.path, done, src.size)
		}
		start := time.Now()
		var n int64
		var err error
		if srcs != nil {
			n, err = copyStreams(dst, srcs, done, min(step, src.size-done))
		} else {
			n, err = c.copyOne(ctx, dst, src, h, step)
		}
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
		step = nextStep(step, n, time.Since(start), c.seams.chunk)
	}
	if h == nil {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// nextStep sizes the step after one that moved n bytes in took: what that
// rate moves in stepTarget, at most twice the last step and within
// [minStep, largest].
func nextStep(last, n int64, took time.Duration, largest int64) int64 {
	want := 2 * last
	if took > 0 {
		want = min(want, int64(float64(n)/took.Seconds()*stepTarget.Seconds()))
	}
	return max(min(want, largest), min(minStep, largest))
}

func (c *Cache) copyOne(ctx context.Context, dst *os.File, src *source, h hash.Hash, step int64) (int64, error) {
	var r io.Reader = &io.LimitedReader{R: src.f, N: step}
	if h != nil {
		r = io.TeeReader(r, h) // a plain read and write, then: no copy_file_range
	}
	return c.seams.copyChunk(ctx, dst, r)
}

func copyError(path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: staging %s: %v", ErrNoSpace, path, err)
	}
	return fmt.Errorf("staging %s: %w", path, err)
}
