package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDeadline marks a removal that ran out of time before it finished; what
// is left is for the next try.
var ErrDeadline = errors.New("not finished in time")

// RemoveOptions bound and shape a RemoveTree.
type RemoveOptions struct {
	Deadline time.Time // zero: none
	KeepTop  bool      // empty the directory, keep it
}

// maxRemoveErrors is how many problems a RemoveTree names; the rest are counted.
const maxRemoveErrors = 8

// RemoveTree removes name in dir and everything below it, as root or as
// the owner of what it removes, whatever a user made there:
//
//   - it never follows a symbolic link and never enters another file system
//     (a mount point is left in place and named in the error: nothing is
//     unmounted);
//   - it holds two descriptors at a time whatever the depth, going back up
//     through ".." and checking that each directory it returns to is the
//     one it left (device and inode), so neither a tree deeper than the
//     descriptor limit nor one moved while it works sends it elsewhere;
//   - as the directories' owner it restores the owner's read, write and
//     search bits before entering one (a user's 0500 directory);
//   - it stops at the deadline with ErrDeadline.
//
// A missing name is no error.
func RemoveTree(dir *os.File, name string, o RemoveOptions) error {
	dev, err := devOf(dir)
	if err != nil {
		return err
	}
	shown := filepath.Join(dir.Name(), name)
	r := remover{dev: dev, o: o, shown: shown, euid: os.Geteuid(), giveUp: map[uint64]bool{}}
	pfd, st, err := openPathAt(int(dir.Fd()), name, dev, shown)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		unix.Close(pfd)
		if o.KeepTop {
			return fmt.Errorf("%s is %s, not a directory", shown, Kind(modeOf(st.Mode)))
		}
		return r.unlink(int(dir.Fd()), name, false)
	}
	cur, err := r.enter(pfd, st)
	unix.Close(pfd)
	if err != nil {
		return &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	r.stack = []frame{{ino: st.Ino}}
	if err := r.run(cur); err != nil {
		return err
	}
	if !o.KeepTop {
		r.note(r.unlink(int(dir.Fd()), name, true))
	}
	return r.err()
}

type frame struct {
	ino   uint64
	stuck bool // something below could not be removed
}

type remover struct {
	dev    uint64
	o      RemoveOptions
	shown  string
	euid   int
	stack  []frame
	giveUp map[uint64]bool // entries that could not be removed: not tried again
	errs   []error
	more   int
	ops    int
	late   bool
}

func (r *remover) note(err error) {
	switch {
	case err == nil:
	case len(r.errs) < maxRemoveErrors:
		r.errs = append(r.errs, err)
	default:
		r.more++
	}
}

func (r *remover) err() error {
	if r.more > 0 {
		r.errs = append(r.errs, fmt.Errorf("and %d more problems below %s", r.more, r.shown))
	}
	return errors.Join(r.errs...)
}

// enter opens a directory reached as the O_PATH descriptor pfd for
// reading, putting its owner's bits right first where the caller owns it.
func (r *remover) enter(pfd int, st Stat) (int, error) {
	if st.UID == r.euid && r.euid != 0 && st.Mode&0o700 != 0o700 {
		// chmod through the descriptor's magic link: the directory checked.
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(pfd), st.Mode&0o7777|0o700); err != nil {
			return -1, err
		}
	}
	return unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// run empties the directory cur (the top of the stack) and everything
// below; it closes cur.
func (r *remover) run(cur int) error {
	buf := make([]byte, 8<<10)
	for {
		if r.expired() {
			unix.Close(cur)
			r.note(fmt.Errorf("removing %s: %w", r.shown, ErrDeadline))
			return r.err()
		}
		next, err := r.step(cur, buf)
		if err != nil {
			return err
		}
		if next < 0 {
			return nil
		}
		cur = next
	}
}

// expired says the deadline passed; it looks at the clock every 64 calls.
func (r *remover) expired() bool {
	if !r.late && !r.o.Deadline.IsZero() {
		r.ops++
		r.late = r.ops%64 == 1 && time.Now().After(r.o.Deadline)
	}
	return r.late
}

// step reads a batch of cur's entries and removes them, until it must go
// down into a directory that is not empty, or up out of an empty one. It
// returns the directory to go on in, or -1 when the top is empty.
func (r *remover) step(cur int, buf []byte) (int, error) {
	n, err := unix.Getdents(cur, buf)
	if err != nil {
		unix.Close(cur)
		return -1, fmt.Errorf("reading below %s: %w", r.shown, err)
	}
	if n == 0 {
		return r.up(cur)
	}
	_, _, names := unix.ParseDirent(buf[:n], -1, nil)
	for _, name := range names {
		if r.expired() {
			return cur, nil // run stops before the next batch
		}
		st, err := statAt(cur, name)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case err != nil:
			r.stuck(0, fmt.Errorf("below %s: %s: %w", r.shown, strconv.Quote(name), err))
			continue
		case r.giveUp[st.Ino]:
			r.stack[len(r.stack)-1].stuck = true
			continue
		case st.Dev != r.dev || st.MountRoot:
			r.stuck(st.Ino, fmt.Errorf("below %s: %s is a mount point, left in place (sifkernel unmounts nothing)", r.shown, strconv.Quote(name)))
			continue
		case !st.IsDir():
			if err := unix.Unlinkat(cur, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				r.stuck(st.Ino, fmt.Errorf("removing %s below %s: %w", strconv.Quote(name), r.shown, err))
			}
			continue
		}
		err = unix.Unlinkat(cur, name, unix.AT_REMOVEDIR)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			continue
		case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
			if next, ok := r.down(cur, name); ok {
				return next, nil
			}
		default:
			r.stuck(st.Ino, fmt.Errorf("removing %s below %s: %w", strconv.Quote(name), r.shown, err))
		}
	}
	return cur, nil
}

func (r *remover) stuck(ino uint64, err error) {
	if ino != 0 {
		r.giveUp[ino] = true
	}
	r.stack[len(r.stack)-1].stuck = true
	r.note(err)
}

// down enters the directory name in cur; cur is closed if it did.
func (r *remover) down(cur int, name string) (int, bool) {
	pfd, st, err := openPathAt(cur, name, r.dev, r.shown+"/…/"+name)
	if err != nil {
		r.stuck(0, err)
		return -1, false
	}
	next, err := r.enter(pfd, st)
	unix.Close(pfd)
	if err != nil {
		r.stuck(st.Ino, fmt.Errorf("entering %s below %s: %w", strconv.Quote(name), r.shown, err))
		return -1, false
	}
	unix.Close(cur)
	r.stack = append(r.stack, frame{ino: st.Ino})
	return next, true
}

// up leaves the empty (or stuck) directory cur for its parent, which must
// be the directory it came from.
func (r *remover) up(cur int) (int, error) {
	last := r.stack[len(r.stack)-1]
	if len(r.stack) == 1 {
		unix.Close(cur)
		return -1, nil
	}
	parent, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(cur)
	if err != nil {
		return -1, fmt.Errorf("going back up below %s: %w", r.shown, err)
	}
	r.stack = r.stack[:len(r.stack)-1]
	want := r.stack[len(r.stack)-1]
	st, err := statAt(parent, "")
	if err != nil || st.Dev != r.dev || st.Ino != want.ino {
		unix.Close(parent)
		return -1, fmt.Errorf("below %s: a directory was moved while it was being removed; stopped (the next run goes on)", r.shown)
	}
	if last.stuck {
		r.giveUp[last.ino] = true
		r.stack[len(r.stack)-1].stuck = true
	}
	return parent, nil
}

// unlink removes name in dirfd, a directory or not.
func (r *remover) unlink(dirfd int, name string, dir bool) error {
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(dirfd, name, flags); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: r.shown, Err: err}
	}
	return nil
}
