package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPublic marks a file that not every user of the machine could read:
// the file is not readable by others, or a directory on the way to it is
// not searchable by others.
var ErrNotPublic = errors.New("not readable by every user")

// OpenPublic opens the regular file at path only if every user of the
// machine could read it through the ordinary permission bits: each
// directory on the way (symbolic links resolved, up to 40) has the others'
// search bit, and the file itself the others' read bit. It decides through
// descriptors, from /, so what it opens is what it checked. Group and
// owner bits, and ACL entries naming a user or group, count for nothing: a
// file only some can read is refused even where the caller is one of them.
// It returns the file and the path it resolved to.
func OpenPublic(path string) (*os.File, string, error) {
	links := 0
	return openPublic(path, &links)
}

func openPublic(path string, links *int) (*os.File, string, error) {
	if !filepath.IsAbs(path) {
		return nil, "", fmt.Errorf("%s: not an absolute path", path)
	}
	todo := split(path)
	if len(todo) == 0 {
		return nil, "", fmt.Errorf("%s: names no file below /", path)
	}
	fd, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	seen := "/"
	for {
		if err := publicDir(fd, seen); err != nil {
			unix.Close(fd)
			return nil, "", err
		}
		c := todo[0]
		if c == ".." {
			unix.Close(fd)
			return openPublic(rejoin(filepath.Dir(seen), todo[1:]), links)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return nil, "", &fs.PathError{Op: "stat", Path: filepath.Join(seen, c), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := readAnyLink(fd, c, filepath.Join(seen, c), links)
			unix.Close(fd)
			if err != nil {
				return nil, "", err
			}
			if !filepath.IsAbs(target) {
				target = seen + "/" + target
			}
			return openPublic(rejoin(target, todo[1:]), links)
		}
		if len(todo) == 1 {
			f, err := publicFile(fd, c, filepath.Join(seen, c))
			unix.Close(fd)
			return f, filepath.Join(seen, c), err
		}
		next, err := openDir(fd, c)
		unix.Close(fd)
		if errors.Is(err, unix.EACCES) {
			return nil, "", fmt.Errorf("%w: %s: others may not enter it (permission denied)", ErrNotPublic, filepath.Join(seen, c))
		}
		if err != nil {
			return nil, "", &fs.PathError{Op: "open", Path: filepath.Join(seen, c), Err: err}
		}
		seen, fd, todo = filepath.Join(seen, c), next, todo[1:]
	}
}

// publicDir refuses a directory others may not search.
func publicDir(fd int, shown string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	if st.Mode&unix.S_IXOTH == 0 {
		return fmt.Errorf("%w: %s has mode %04o: others may not enter it", ErrNotPublic, shown, st.Mode&0o7777)
	}
	return nil
}

// publicFile opens name in dirfd without following a link or blocking,
// and refuses anything but a regular file others may read.
func publicFile(dirfd int, name, shown string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EACCES) {
		return nil, fmt.Errorf("%w: %s: others may not read it (permission denied)", ErrNotPublic, shown)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		unix.Close(fd)
		return nil, notRegular(shown, modeOf(st.Mode))
	case st.Mode&unix.S_IROTH == 0:
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s has mode %04o: others may not read it", ErrNotPublic, shown, st.Mode&0o7777)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), shown), nil
}

// readAnyLink reads a symbolic link whoever owns it: here the target is
// checked, not the link.
func readAnyLink(dirfd int, c, shown string, links *int) (string, error) {
	if *links++; *links > maxLinks {
		return "", &fs.PathError{Op: "resolve", Path: shown, Err: syscall.ELOOP}
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, c, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: shown, Err: err}
	}
	return string(buf[:n]), nil
}
