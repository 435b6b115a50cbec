package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Tree is the cache root with its jobs/ and users/ directories, each
// verified to be root's alone (see fsx.OpenTrustedDir) when opened and used
// only through those descriptors afterwards: nothing a user makes under
// /tmp, before or during a hook, can send root or a job user elsewhere.
type Tree struct {
	path  string
	root  *os.Root
	jobs  *os.Root
	users *os.Root
}

// ErrNotOwner marks a job or user directory that is not its user's.
var ErrNotOwner = errors.New("not owned by its user")

// OpenTree opens and verifies the cache root at path, with jobs/ and users/.
// With create (root only), what is missing is made root:root 0755; without,
// a missing jobs/ or users/ reads as empty. A path that fails a check is
// never used: the error says which directory and why.
func OpenTree(path string, create bool) (*Tree, error) {
	root, err := fsx.OpenTrustedDir(path, create, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsafeRoot, err)
	}
	t := &Tree{path: path, root: root}
	if t.jobs, err = subdir(root, "jobs", create); err == nil {
		t.users, err = subdir(root, "users", create)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnsafeRoot, err)
	}
	return t, nil
}

// subdir opens a verified subdirectory; a missing one is nil.
func subdir(root *os.Root, name string, create bool) (*os.Root, error) {
	r, err := fsx.TrustedSubdir(root, name, create, 0o755)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// Filesystem is the size and free bytes (for unprivileged users) of the
// file system the verified root is on, measured through its descriptor:
// no path is looked up again, so nothing swapped in since can be measured,
// or hang the caller.
func (t *Tree) Filesystem() (size, free int64, err error) {
	d, err := t.root.Open(".")
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return 0, 0, fmt.Errorf("measuring %s: %w", t.path, err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// Close releases the descriptors.
func (t *Tree) Close() error {
	for _, r := range []*os.Root{t.users, t.jobs, t.root} {
		if r != nil {
			r.Close()
		}
	}
	return nil
}

// JobDir is the path of jobs/<job>, for messages and for the job user.
func (t *Tree) JobDir(job string) string { return filepath.Join(t.path, "jobs", job) }

// Owner is who owns a directory, from its Lstat.
type Owner = fsx.Owner

// ownerOf reads the owner of a directory entry without following it; ok is
// false for anything but a directory.
func ownerOf(r *os.Root, name string) (Owner, bool, error) {
	if r == nil {
		return Owner{}, false, fs.ErrNotExist
	}
	st, err := r.Lstat(name)
	if err != nil {
		return Owner{}, false, err
	}
	o, ok := fsx.OwnerOf(st)
	if !st.IsDir() || !ok {
		return Owner{}, false, nil
	}
	return o, true, nil
}

// MakeJobDir creates jobs/<job> for uid:gid, 0700 (root only). A directory
// left by an earlier run of the same job (a requeue) is reused if it is
// the user's.
func (t *Tree) MakeJobDir(job string, uid, gid int) (string, error) {
	err := t.jobs.Mkdir(job, 0o700)
	switch {
	case err == nil:
		if err := t.jobs.Lchown(job, uid, gid); err != nil {
			t.jobs.Remove(job)
			return "", err
		}
	case errors.Is(err, fs.ErrExist):
		o, dir, err := ownerOf(t.jobs, job)
		if err != nil {
			return "", err
		}
		if !dir || o.UID != uid {
			return "", fmt.Errorf("%w: %s exists and is not a directory of uid %d; not using it", ErrNotOwner, t.JobDir(job), uid)
		}
	default:
		return "", err
	}
	return t.JobDir(job), nil
}

// JobDirOwner says who owns jobs/<job>. Anything there but a directory (a
// symlink, say) is removed without being followed, and found is false.
func (t *Tree) JobDirOwner(job string) (o Owner, found bool, err error) {
	o, dir, err := ownerOf(t.jobs, job)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return o, false, nil
	case err != nil:
		return o, false, err
	case !dir:
		return o, false, t.jobs.Remove(job)
	}
	return o, true, nil
}

// OpenOwnJobDir opens jobs/<job> for the calling user: it must be a
// directory owned by that user, not a link (the job user's side of a
// cleanup, and the TaskProlog before it trusts what it finds there).
func (t *Tree) OpenOwnJobDir(job string) (*os.Root, error) {
	o, dir, err := ownerOf(t.jobs, job)
	if err != nil {
		return nil, err
	}
	if !dir || o.UID != os.Geteuid() {
		return nil, fmt.Errorf("%w: %s is not a directory of uid %d", ErrNotOwner, t.JobDir(job), os.Geteuid())
	}
	return t.jobs.OpenRoot(job)
}

// RemoveJobDir removes jobs/<job> once it is empty; a missing one is fine.
func (t *Tree) RemoveJobDir(job string) error {
	if t.jobs == nil {
		return nil
	}
	if err := t.jobs.Remove(job); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", t.JobDir(job), err)
	}
	return nil
}

// Jobs lists the names in jobs/.
func (t *Tree) Jobs() ([]string, error) { return names(t.jobs, filepath.Join(t.path, "jobs")) }

// UserDirs lists the users' directories in users/ whose owner matches their
// name; others are left alone.
func (t *Tree) UserDirs() (map[int]Owner, []error) {
	all, err := names(t.users, filepath.Join(t.path, "users"))
	if err != nil {
		return nil, []error{err}
	}
	out := map[int]Owner{}
	var errs []error
	for _, n := range all {
		uid, err := strconv.Atoi(n)
		if err != nil || uid <= 0 || strconv.Itoa(uid) != n {
			continue
		}
		o, dir, err := ownerOf(t.users, n)
		switch {
		case err != nil:
			errs = append(errs, err)
		case dir && o.UID == uid:
			out[uid] = o
		}
	}
	return out, errs
}

func names(r *os.Root, shown string) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	d, err := r.Open(".")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", shown, err)
	}
	defer d.Close()
	ns, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", shown, err)
	}
	return ns, nil
}

// EnsureUserDir makes users/<uid> for uid:gid, 0700, if it is missing (root
// only). One the user owns is accepted whatever its mode: it is the user's
// own, and the user's side of the hook puts the mode right. Anything else
// there is refused, and the user's images are not staged: a user's own
// mistake is never a node fault.
func (t *Tree) EnsureUserDir(uid, gid int) error {
	name := strconv.Itoa(uid)
	if err := t.users.Mkdir(name, 0o700); err == nil {
		if err := t.users.Lchown(name, uid, gid); err != nil {
			t.users.Remove(name)
			return err
		}
		return t.users.Chmod(name, 0o700)
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	o, dir, err := ownerOf(t.users, name)
	if err != nil {
		return err
	}
	if !dir || o.UID != uid {
		return fmt.Errorf("%w: %s is not a directory of uid %d", ErrNotOwner, filepath.Join(t.path, "users", name), uid)
	}
	return nil
}
