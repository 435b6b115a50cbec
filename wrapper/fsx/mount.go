package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrOtherMount marks an entry on another file system than the directory it
// was reached from: a mount point, perhaps a user's (FUSE with
// user_allow_other). What such a file system says of its files, their
// owner above all, proves nothing, and asking it anything may block for as
// long as its daemon likes: a hook never crosses into one.
var ErrOtherMount = errors.New("on another file system (a mount point)")

// Stat is what a hook needs to know of a directory entry.
type Stat struct {
	Dev, Ino uint64
	Mode     uint32 // type and permission bits, as in st_mode
	UID, GID int
	Nlink    uint32
	Size     int64
	// MountRoot says the entry is the root of a mount (a bind mount of the
	// same device included), where the kernel can tell (Linux 5.8).
	MountRoot bool
}

// IsDir says whether the entry is a directory.
func (s Stat) IsDir() bool { return s.Mode&unix.S_IFMT == unix.S_IFDIR }

// IsRegular says whether the entry is a regular file.
func (s Stat) IsRegular() bool { return s.Mode&unix.S_IFMT == unix.S_IFREG }

// FileMode is the entry's type, for messages (see Kind).
func (s Stat) FileMode() fs.FileMode { return modeOf(s.Mode) | fs.FileMode(s.Mode&0o777) }

// statAt stats name in dirfd (or dirfd itself, for name "") without
// following a link and with AT_STATX_DONT_SYNC: a network or FUSE file
// system answers from what the kernel has cached instead of being asked,
// so a daemon a user stopped cannot block the caller.
func statAt(dirfd int, name string) (Stat, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_DONT_SYNC
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var x unix.Statx_t
	mask := unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID | unix.STATX_INO | unix.STATX_NLINK | unix.STATX_SIZE
	if err := unix.Statx(dirfd, name, flags, mask, &x); err != nil {
		return Stat{}, err
	}
	s := Stat{Dev: unix.Mkdev(x.Dev_major, x.Dev_minor), Ino: x.Ino, Mode: uint32(x.Mode), UID: int(x.Uid), GID: int(x.Gid), Nlink: x.Nlink, Size: int64(x.Size)}
	s.MountRoot = x.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && x.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	return s, nil
}

// openPathAt opens name in dirfd as O_PATH, not following a link, and
// checks that what it reached is on dev. An O_PATH open of a mount point
// asks nothing of the mounted file system, and the check is on the
// descriptor, so a mount made after it cannot be crossed either.
func openPathAt(dirfd int, name string, dev uint64, shown string) (int, Stat, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, Stat{}, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	st, err := statAt(fd, "")
	if err == nil && (st.Dev != dev || st.MountRoot) {
		err = ErrOtherMount
	}
	if err != nil {
		unix.Close(fd)
		return -1, Stat{}, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	return fd, st, nil
}

// devOf is the device of an open directory.
func devOf(dir *os.File) (uint64, error) {
	st, err := statAt(int(dir.Fd()), "")
	if err != nil {
		return 0, &fs.PathError{Op: "stat", Path: dir.Name(), Err: err}
	}
	return st.Dev, nil
}

// LstatAt stats name in the open directory dir, on dir's file system only:
// a mount point there is ErrOtherMount, whatever the mounted file system
// would say of itself, and nothing is asked of it.
func LstatAt(dir *os.File, name string) (Stat, error) {
	dev, err := devOf(dir)
	if err != nil {
		return Stat{}, err
	}
	fd, st, err := openPathAt(int(dir.Fd()), name, dev, filepath.Join(dir.Name(), name))
	if err != nil {
		return Stat{}, err
	}
	unix.Close(fd)
	return st, nil
}

// OpenDirAt opens the directory name in dir for reading, on dir's file
// system only (see LstatAt), and returns its Stat as opened.
func OpenDirAt(dir *os.File, name string) (*os.File, Stat, error) {
	dev, err := devOf(dir)
	if err != nil {
		return nil, Stat{}, err
	}
	shown := filepath.Join(dir.Name(), name)
	pfd, st, err := openPathAt(int(dir.Fd()), name, dev, shown)
	if err != nil {
		return nil, Stat{}, err
	}
	defer unix.Close(pfd)
	if !st.IsDir() {
		return nil, st, fmt.Errorf("%w: %s is %s, not a directory", ErrUntrusted, shown, Kind(modeOf(st.Mode)))
	}
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	return os.NewFile(uintptr(fd), shown), st, nil
}

// OpenRootAt is OpenDirAt for an os.Root: the root is the very directory
// checked, reached through the checked descriptor, never by name again.
func OpenRootAt(dir *os.File, name string) (*os.Root, Stat, error) {
	d, st, err := OpenDirAt(dir, name)
	if err != nil {
		return nil, st, err
	}
	defer d.Close()
	r, err := os.OpenRoot("/proc/self/fd/" + strconv.Itoa(int(d.Fd())))
	if err != nil {
		return nil, st, &fs.PathError{Op: "open", Path: d.Name(), Err: err}
	}
	if err := sameDir(r, ".", unix.Stat_t{Dev: st.Dev, Ino: st.Ino}, d.Name()); err != nil {
		r.Close()
		return nil, st, err
	}
	return r, st, nil
}
