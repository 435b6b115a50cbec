// Package fsx opens files and directories for code that a user must not be
// able to steer: root hooks, and the job user's side of them. Directories
// are walked from / one descriptor at a time and checked on the way; files
// are opened without blocking and checked to be regular before a byte is
// read.
package fsx

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUntrusted marks a path that someone other than root could change.
var ErrUntrusted = errors.New("not trusted")

// ErrNotRegular marks a file that is a FIFO, socket, device or directory
// where a regular file was expected: opening or reading one could block.
var ErrNotRegular = errors.New("not a regular file")

// Kind names what a mode is, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// OpenRegular opens path for reading and returns it only if it is a regular
// file. It stats first, so a device is never opened at all, then opens with
// O_NONBLOCK (a FIFO swapped in after the stat does not block the open) and
// checks the descriptor again, which no swap can fool. With nofollow a
// final symbolic link is refused rather than followed.
func OpenRegular(unsafePath string, nofollow bool) (*os.File, error) {
	stat := os.Stat
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if nofollow {
		stat, flags = os.Lstat, flags|syscall.O_NOFOLLOW
	}
	if st, err := stat(unsafePath); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, notRegular(unsafePath, st.Mode())
	}
	f, err := os.OpenFile(unsafePath, flags, 0)
	if err != nil {
		if nofollow && errors.Is(err, syscall.ELOOP) {
			return nil, notRegular(unsafePath, fs.ModeSymlink)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(unsafePath, st.Mode())
	}
	return f, nil
}

func notRegular(path string, m fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is %s", ErrNotRegular, Kind(m))}
}

// ErrTooLarge marks a file longer than a reader's limit.
var ErrTooLarge = errors.New("too large")

// ReadRegular reads at most limit bytes of a regular file (see OpenRegular);
// a longer file is an error that says so, not a silent cut.
func ReadRegular(unsafePath string, limit int64, nofollow bool) ([]byte, error) {
	f, err := OpenRegular(unsafePath, nofollow)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &fs.PathError{Op: "read", Path: unsafePath, Err: fmt.Errorf("%w: longer than %d bytes", ErrTooLarge, limit)}
	}
	return data, nil
}

// maxLinks bounds the symbolic links one walk follows, as the kernel does.
const maxLinks = 40

// walk resolves path from / through directories root alone can change. Each
// directory is entered by descriptor with O_NOFOLLOW and must be owned by
// root and not writable by group or others, unless it is sticky (as /tmp
// is: there nobody can rename or remove what root owns). A symbolic link on
// the way is followed only if root owns it. It returns a descriptor of the
// last directory, that directory's path and the last component's name,
// unresolved.
func walk(path string, links *int) (dirfd int, dir, name string, err error) {
	if !filepath.IsAbs(path) {
		return -1, "", "", fmt.Errorf("%s: not an absolute path", path)
	}
	todo := split(path)
	if len(todo) == 0 {
		return -1, "", "", fmt.Errorf("%s: names no file below /", path)
	}
	fd, err := openRootDir()
	if err != nil {
		return -1, "", "", err
	}
	seen := "/"
	for {
		c := todo[0]
		if c == ".." {
			// Go back up by walking the verified path again from /.
			unix.Close(fd)
			return walk(rejoin(filepath.Dir(seen), todo[1:]), links)
		}
		if len(todo) == 1 {
			return fd, seen, c, nil
		}
		todo = todo[1:]
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return -1, "", "", &fs.PathError{Op: "stat", Path: filepath.Join(seen, c), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := readLink(fd, c, st, filepath.Join(seen, c), links)
			unix.Close(fd)
			if err != nil {
				return -1, "", "", err
			}
			if !filepath.IsAbs(target) {
				target = seen + "/" + target
			}
			return walk(rejoin(target, todo), links)
		}
		next, err := openDir(fd, c)
		unix.Close(fd)
		if err != nil {
			return -1, "", "", &fs.PathError{Op: "open", Path: filepath.Join(seen, c), Err: err}
		}
		seen = filepath.Join(seen, c)
		if err := checkDirFd(next, seen, true); err != nil {
			unix.Close(next)
			return -1, "", "", err
		}
		fd = next
	}
}

// readLink reads the link c in dirfd, which root must own.
func readLink(dirfd int, c string, st unix.Stat_t, shown string, links *int) (string, error) {
	if *links++; *links > maxLinks {
		return "", &fs.PathError{Op: "resolve", Path: shown, Err: syscall.ELOOP}
	}
	if st.Uid != 0 {
		return "", fmt.Errorf("%w: %s is a symbolic link owned by uid %d, not root", ErrUntrusted, shown, st.Uid)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, c, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: shown, Err: err}
	}
	return string(buf[:n]), nil
}

// rejoin puts components back behind a path without cleaning it: "a/.."
// must go up from wherever a resolves to, not be dropped as text.
func rejoin(path string, parts []string) string {
	return strings.Join(append([]string{path}, parts...), "/")
}

func split(path string) []string {
	var out []string
	for _, p := range strings.Split(path, "/") {
		if p != "" && p != "." {
			out = append(out, p)
		}
	}
	return out
}

func openRootDir() (int, error) {
	fd, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	if err := checkDirFd(fd, "/", true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// checkDirFd refuses a directory root does not own, or that others may
// write (a sticky one is allowed on the way, not as the end).
func checkDirFd(fd int, shown string, onTheWay bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	return checkOwner(st.Uid, st.Mode, shown, onTheWay)
}

func checkOwner(uid, mode uint32, shown string, onTheWay bool) error {
	writable := mode&0o022 != 0
	sticky := mode&unix.S_ISVTX != 0
	switch {
	case uid != 0:
		return fmt.Errorf("%w: %s is owned by uid %d, not root", ErrUntrusted, shown, uid)
	case writable && !(onTheWay && sticky):
		return fmt.Errorf("%w: %s has mode %04o: group or others may write to it", ErrUntrusted, shown, mode&0o7777)
	}
	return nil
}

// OpenTrustedDir opens the directory at path if root alone can change it
// and every directory on the way to it (see walk). The directory itself
// must not be a symbolic link, must be owned by root and must not be
// writable by group or others, sticky or not. With create, a missing
// directory is made with mode in its verified parent. Any user may call it:
// a job user's process checks a cache root the same way before trusting it.
func OpenTrustedDir(path string, create bool, mode fs.FileMode) (*os.Root, error) {
	links := 0
	dirfd, _, name, err := walk(path, &links)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	fd, err := openDir(dirfd, name)
	created := false
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(dirfd, name, uint32(mode.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &fs.PathError{Op: "mkdir", Path: path, Err: err}
		}
		created = true
		fd, err = openDir(dirfd, name)
	}
	if err != nil {
		return nil, dirError(dirfd, name, path, err)
	}
	defer unix.Close(fd)
	if created {
		if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil { // Mkdirat applied the umask
			return nil, &fs.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	if err := checkDirFd(fd, path, false); err != nil {
		return nil, err
	}
	return rootFromFd(fd, path)
}

// dirError says why name in dirfd could not be opened as a directory.
func dirError(dirfd int, name, shown string, err error) error {
	var st unix.Stat_t
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return fmt.Errorf("%w: %s is %s, not a directory", ErrUntrusted, shown, Kind(modeOf(st.Mode)))
		}
	}
	return &fs.PathError{Op: "open", Path: shown, Err: err}
}

func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}

// rootFromFd opens path as an os.Root and makes sure it is the directory fd
// was verified as (same device and inode). Only root can change the path,
// so this holds; the check makes it certain.
func rootFromFd(fd int, path string) (*os.Root, error) {
	var want unix.Stat_t
	if err := unix.Fstat(fd, &want); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	if err := sameDir(r, ".", want, path); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func sameDir(r *os.Root, name string, want unix.Stat_t, shown string) error {
	st, err := r.Stat(name)
	if err != nil {
		return err
	}
	got, ok := st.Sys().(*syscall.Stat_t)
	if !ok || got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("%w: %s changed while it was being opened", ErrUntrusted, shown)
	}
	return nil
}

// TrustedSubdir opens the directory name inside parent, a verified root
// directory, under the rules of OpenTrustedDir; with create a missing one
// is made with mode. parent is root's, so nobody else can swap name.
func TrustedSubdir(parent *os.Root, name string, create bool, mode fs.FileMode) (*os.Root, error) {
	shown := filepath.Join(parent.Name(), name)
	if create {
		if err := parent.Mkdir(name, mode.Perm()); err == nil {
			if err := parent.Chmod(name, mode.Perm()); err != nil { // Mkdir applied the umask
				return nil, err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	st, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: no owner information", shown)
	case !st.IsDir():
		return nil, fmt.Errorf("%w: %s is %s, not a directory", ErrUntrusted, shown, Kind(st.Mode()))
	}
	if err := checkOwner(sys.Uid, sys.Mode, shown, false); err != nil {
		return nil, err
	}
	r, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if err := sameDir(r, ".", unix.Stat_t{Dev: sys.Dev, Ino: sys.Ino}, shown); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// CheckTrustedFile says whether root alone can change the regular file at
// path: the file is owned by root and not writable by group or others, and
// so is every directory on the way to it (see walk), following symbolic
// links only where root owns them. Root uses a config file, or runs a
// program a config names, only after this check.
func CheckTrustedFile(path string) error {
	links := 0
	for {
		dirfd, dir, name, err := walk(path, &links)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		shown := filepath.Join(dir, name)
		if err != nil {
			unix.Close(dirfd)
			return &fs.PathError{Op: "stat", Path: shown, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := readLink(dirfd, name, st, shown, &links)
			unix.Close(dirfd)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(target) {
				target = dir + "/" + target
			}
			path = target
			continue
		}
		unix.Close(dirfd)
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%w: %s is %s", ErrUntrusted, shown, Kind(modeOf(st.Mode)))
		}
		return checkOwner(st.Uid, st.Mode, shown, false)
	}
}

// Owner is who owns a file.
type Owner struct{ UID, GID int }

// OwnerOf is fi's owner; ok is false where the file system gives none.
func OwnerOf(fi fs.FileInfo) (Owner, bool) {
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Owner{}, false
	}
	return Owner{UID: int(sys.Uid), GID: int(sys.Gid)}, true
}

// SyncDir makes a rename or a creation in dir durable: File.Sync syncs
// the file, not the directory that names it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
