package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPublic marks a file that is not one of the site's published
// images (see OpenSiteImage).
var ErrNotPublic = errors.New("not a site image")

// OpenSiteImage opens the regular file at path only if it is one the site
// published for every user: the file and every directory on the way to it
// (symbolic links resolved, up to 40, each owned by root or one of owners)
// owned by root or one of owners; no directory writable by group or others
// unless it is sticky, and then what lies in it must be so owned too (the
// rule OpenSSH applies to authorized_keys); every directory searchable by
// owner, group and others, the file readable by all three and writable by
// its owner alone, and none with an access ACL beyond its mode bits (an
// ACL entry can deny one user what the mode gives to all). A file a user
// wrote is never one, world-readable or not: sharing it would let its
// writer choose what other users run. It decides through descriptors, from
// /, so what it opens is what it checked, and returns the file and the
// path it resolved to.
func OpenSiteImage(path string, owners []int) (*os.File, string, error) {
	links := 0
	return openSiteImage(path, owners, &links, false)
}

// OpenSiteDir opens the directory at path only if the site owns it and
// every directory on the way, by OpenSiteImage's rule for directories
// (cache warm takes a directory's *.sif only from such a one).
func OpenSiteDir(path string, owners []int) (*os.File, string, error) {
	links := 0
	return openSiteImage(path, owners, &links, true)
}

func openSiteImage(path string, owners []int, links *int, dir bool) (*os.File, string, error) {
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
		if err := siteDir(fd, seen, owners); err != nil {
			unix.Close(fd)
			return nil, "", err
		}
		c := todo[0]
		if c == ".." {
			unix.Close(fd)
			return openSiteImage(rejoin(filepath.Dir(seen), todo[1:]), owners, links, dir)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return nil, "", &fs.PathError{Op: "stat", Path: filepath.Join(seen, c), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if err := siteOwner(st.Uid, filepath.Join(seen, c), "a symbolic link", owners); err != nil {
				unix.Close(fd)
				return nil, "", err
			}
			target, err := readAnyLink(fd, c, filepath.Join(seen, c), links)
			unix.Close(fd)
			if err != nil {
				return nil, "", err
			}
			if !filepath.IsAbs(target) {
				target = seen + "/" + target
			}
			return openSiteImage(rejoin(target, todo[1:]), owners, links, dir)
		}
		if len(todo) == 1 && !dir {
			f, err := siteFile(fd, c, filepath.Join(seen, c), owners)
			unix.Close(fd)
			return f, filepath.Join(seen, c), err
		}
		next, err := openDir(fd, c)
		unix.Close(fd)
		if err != nil {
			return nil, "", &fs.PathError{Op: "open", Path: filepath.Join(seen, c), Err: err}
		}
		seen, fd, todo = filepath.Join(seen, c), next, todo[1:]
		if len(todo) == 0 { // dir: the directory itself
			if err := siteDir(fd, seen, owners); err != nil {
				unix.Close(fd)
				return nil, "", err
			}
			return os.NewFile(uintptr(fd), seen), seen, nil
		}
	}
}

// siteOwner refuses what neither root nor one of owners owns.
func siteOwner(uid uint32, shown, what string, owners []int) error {
	if uid == 0 || slices.Contains(owners, int(uid)) {
		return nil
	}
	return fmt.Errorf("%w: %s is %s owned by uid %d, neither root nor one of cache.site_owners", ErrNotPublic, shown, what, uid)
}

// siteDir refuses a directory the site does not own, that users may write
// (unless sticky: then each name in it is checked in turn), that some user
// may not search, or that has an access ACL.
func siteDir(fd int, shown string, owners []int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	if err := siteOwner(st.Uid, shown, "a directory", owners); err != nil {
		return err
	}
	mode := st.Mode & 0o7777
	switch {
	case mode&0o022 != 0 && mode&unix.S_ISVTX == 0:
		return fmt.Errorf("%w: %s has mode %04o: group or others may change what is in it", ErrNotPublic, shown, mode)
	case mode&0o111 != 0o111:
		return fmt.Errorf("%w: %s has mode %04o: not every user may enter it (owner, group and others need x)", ErrNotPublic, shown, mode)
	}
	return noACL(fd, shown)
}

// siteFile opens name in dirfd without following a link or blocking,
// and refuses anything but a regular file of the site's that every user
// may read and none but its owner may write.
func siteFile(dirfd int, name, shown string, owners []int) (*os.File, error) {
	// The rule first, on a stat (a refusal then says why rather than
	// "permission denied"), then again on the descriptor, which no swap
	// between the two can fool.
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	if err := siteFileMode(st, shown, owners); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	if err = unix.Fstat(fd, &st); err != nil {
		err = &fs.PathError{Op: "stat", Path: shown, Err: err}
	}
	if err == nil {
		err = siteFileMode(st, shown, owners)
	}
	if err == nil {
		err = noACL(fd, shown)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), shown), nil
}

// siteFileMode refuses anything but a regular file of the site's that
// every user may read and none but its owner may write.
func siteFileMode(st unix.Stat_t, shown string, owners []int) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return notRegular(shown, modeOf(st.Mode))
	}
	if err := siteOwner(st.Uid, shown, "a file", owners); err != nil {
		return err
	}
	mode := st.Mode & 0o7777
	switch {
	case mode&0o444 != 0o444:
		return fmt.Errorf("%w: %s has mode %04o: not every user may read it (owner, group and others need r)", ErrNotPublic, shown, mode)
	case mode&0o022 != 0:
		return fmt.Errorf("%w: %s has mode %04o: group or others may write it", ErrNotPublic, shown, mode)
	}
	return nil
}

// noACL refuses a file or directory with a POSIX access ACL: Linux keeps
// system.posix_acl_access only for an ACL with entries beyond the mode's
// three, and one such entry may deny a user or group what the mode gives.
func noACL(fd int, shown string) error {
	_, err := unix.Fgetxattr(fd, "system.posix_acl_access", nil)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s has an ACL beyond its mode bits (it may deny some users)", ErrNotPublic, shown)
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EOPNOTSUPP):
		return nil
	}
	return &fs.PathError{Op: "getxattr", Path: shown, Err: err}
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
