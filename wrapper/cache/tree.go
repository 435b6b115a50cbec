package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Tree is the cache root with its jobs/ and users/ directories, each
// verified to be root's alone (see fsx.OpenTrustedDir) when opened and used
// only through those descriptors afterwards: nothing a user makes under
// /tmp, before or during a hook, can send root or a job user elsewhere.
//
// Below jobs/ and users/ a Tree never leaves the cache root's file system:
// a directory a user mounted something on (FUSE with user_allow_other) is
// refused without a question to the mounted file system (see fsx.LstatAt).
type Tree struct {
	path  string
	root  *os.Root
	jobs  *os.Root
	users *os.Root
	// jobsDir and usersDir are jobs/ and users/ as open directories, for
	// the checks that must not cross a mount.
	jobsDir, usersDir *os.File
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
	if t.jobs, t.jobsDir, err = subdir(root, JobsDir, create); err == nil {
		t.users, t.usersDir, err = subdir(root, "users", create)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnsafeRoot, err)
	}
	return t, nil
}

// subdir opens a verified subdirectory, on the root's file system; a
// missing one is nil.
func subdir(root *os.Root, name string, create bool) (*os.Root, *os.File, error) {
	r, err := fsx.TrustedSubdir(root, name, create, 0o755)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	top, err := root.Open(".")
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	defer top.Close()
	d, _, err := fsx.OpenDirAt(top, name)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, d, nil
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
	for _, d := range []*os.File{t.usersDir, t.jobsDir} {
		if d != nil {
			d.Close()
		}
	}
	return nil
}

// JobDir is the path of jobs/<job>, for messages and for the job user.
func (t *Tree) JobDir(job slurm.JobID) string { return JobDirIn(t.path, job) }

// Owner is who owns a directory, from its Lstat.
type Owner = fsx.Owner

// ownerOf reads the owner of a directory entry without following it or
// crossing a mount (an error); ok is false for anything but a directory.
func ownerOf(d *os.File, name string) (Owner, bool, error) {
	if d == nil {
		return Owner{}, false, fs.ErrNotExist
	}
	st, err := fsx.LstatAt(d, name)
	if err != nil {
		return Owner{}, false, err
	}
	return Owner{UID: st.UID, GID: st.GID}, st.IsDir(), nil
}

// MakeJobDir creates jobs/<job> for uid:gid, 0700 (root only). A directory
// left by an earlier run of the same job (a requeue) is reused if it is
// the user's; anything else under that name is a leftover of an older job
// with the same id (a crash, a reset of Slurm's job ids): no job with that
// id runs here but this one, so it is removed (see RemoveJobTree) and the
// directory made anew.
func (t *Tree) MakeJobDir(job slurm.JobID, uid, gid int) (string, error) {
	if job.IsZero() {
		return "", errors.New("job directory: no job")
	}
	err := t.jobs.Mkdir(job.String(), 0o700)
	if errors.Is(err, fs.ErrExist) {
		o, dir, serr := ownerOf(t.jobsDir, job.String())
		if serr == nil && dir && o.UID == uid {
			return t.JobDir(job), nil
		}
		if rerr := t.RemoveJobTree(job, time.Now().Add(leftoverBudget)); rerr != nil {
			return "", fmt.Errorf("%w: %s is a leftover of another job that could not be removed: %w", ErrNotOwner, t.JobDir(job), rerr)
		}
		err = t.jobs.Mkdir(job.String(), 0o700)
	}
	if err != nil {
		return "", err
	}
	if err := t.jobs.Lchown(job.String(), uid, gid); err != nil {
		_ = t.jobs.Remove(job.String())
		return "", err
	}
	return t.JobDir(job), nil
}

// leftoverBudget bounds how long a Prolog spends removing a leftover.
const leftoverBudget = 10 * time.Second

// RemoveJobTree removes jobs/<job> and all below it as root, through
// descriptors on the cache root's file system, never following a link,
// never crossing a mount, whatever its depth (see fsx.RemoveTree): what
// the Epilog and sweep do when the job user's own cleanup could not.
func (t *Tree) RemoveJobTree(job slurm.JobID, deadline time.Time) error {
	if t.jobsDir == nil || job.IsZero() {
		return nil
	}
	return fsx.RemoveTree(t.jobsDir, job.String(), fsx.RemoveOptions{Deadline: deadline})
}

// RemoveUserJobs removes, as root, what users/<uid> holds for jobs that no
// longer run here: jobs/<job>, jobs/<job>.lock and refs/*/<job> (see
// RemoveJobTree). It is sweep's way through a user's cache when the
// user's own sweep could not run; entries and copies are left to the
// user's side. It reads at most maxRefKeys names a directory.
func (t *Tree) RemoveUserJobs(uid int, running map[slurm.JobID]bool, deadline time.Time) error {
	if t.usersDir == nil {
		return nil
	}
	ud, _, err := fsx.OpenDirAt(t.usersDir, strconv.Itoa(uid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer ud.Close()
	opts := fsx.RemoveOptions{Deadline: deadline}
	stale := func(name string) bool {
		job, err := slurm.ParseJobID(strings.TrimSuffix(name, ".lock"))
		return err == nil && !running[job]
	}
	errs := []error{removeMatching(ud, JobsDir, stale, opts)}
	refs, _, err := fsx.OpenDirAt(ud, RefsDir)
	if err != nil {
		return errors.Join(errs...)
	}
	defer refs.Close()
	keys, err := refs.Readdirnames(maxRefKeys)
	errs = append(errs, ignoreEOF(err))
	for _, k := range keys {
		errs = append(errs, removeMatching(refs, k, stale, opts))
	}
	return errors.Join(errs...)
}

// removeMatching removes the entries of parent/name that match.
func removeMatching(parent *os.File, name string, match func(string) bool, opts fsx.RemoveOptions) error {
	d, _, err := fsx.OpenDirAt(parent, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(maxRefKeys)
	errs := []error{ignoreEOF(err)}
	for _, n := range names {
		if match(n) {
			errs = append(errs, fsx.RemoveTree(d, n, opts))
		}
	}
	return errors.Join(errs...)
}

// maxRefKeys bounds the refs/ entries root looks through in one sweep.
const maxRefKeys = 10000

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// JobDirOwner says who owns jobs/<job>. Anything there but a directory (a
// symlink, say) is removed without being followed, and found is false.
func (t *Tree) JobDirOwner(job slurm.JobID) (o Owner, found bool, err error) {
	if job.IsZero() {
		return o, false, nil
	}
	o, dir, err := ownerOf(t.jobsDir, job.String())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return o, false, nil
	case err != nil:
		return o, false, err
	case !dir:
		return o, false, t.jobs.Remove(job.String())
	}
	return o, true, nil
}

// OpenOwnJobDir opens jobs/<job> for the calling user: it must be a
// directory owned by that user, not a link (the job user's side of a
// cleanup, and the TaskProlog before it trusts what it finds there).
func (t *Tree) OpenOwnJobDir(job slurm.JobID) (*os.Root, error) {
	o, dir, err := ownerOf(t.jobsDir, job.String())
	if err != nil {
		return nil, err
	}
	if !dir || o.UID != os.Geteuid() {
		return nil, fmt.Errorf("%w: %s is not a directory of uid %d", ErrNotOwner, t.JobDir(job), os.Geteuid())
	}
	r, st, err := fsx.OpenRootAt(t.jobsDir, job.String())
	if err == nil && st.UID != os.Geteuid() { // swapped since: jobs/ is root's, so only by root
		r.Close()
		return nil, fmt.Errorf("%w: %s changed owner", ErrNotOwner, t.JobDir(job))
	}
	return r, err
}

// EmptyOwnJobDir removes what is inside jobs/<job>, the calling user's own
// directory (see OpenOwnJobDir), through fsx.RemoveTree: the job user's
// side of a cleanup, whatever the job left there.
func (t *Tree) EmptyOwnJobDir(job slurm.JobID, deadline time.Time) error {
	o, dir, err := ownerOf(t.jobsDir, job.String())
	if err != nil {
		return err
	}
	if !dir || o.UID != os.Geteuid() {
		return fmt.Errorf("%w: %s is not a directory of uid %d", ErrNotOwner, t.JobDir(job), os.Geteuid())
	}
	return fsx.RemoveTree(t.jobsDir, job.String(), fsx.RemoveOptions{Deadline: deadline, KeepTop: true})
}

// RemoveJobDir removes jobs/<job> once it is empty; a missing one is fine.
func (t *Tree) RemoveJobDir(job slurm.JobID) error {
	if t.jobs == nil || job.IsZero() {
		return nil
	}
	if err := t.jobs.Remove(job.String()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", t.JobDir(job), err)
	}
	return nil
}

// Jobs lists the names in jobs/.
func (t *Tree) Jobs() ([]string, error) { return names(t.jobs, filepath.Join(t.path, JobsDir)) }

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
		o, dir, err := ownerOf(t.usersDir, n)
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

// HasUserDir says whether users/<uid> is a directory of uid's on the cache
// root's file system.
func (t *Tree) HasUserDir(uid int) bool {
	o, dir, err := ownerOf(t.usersDir, strconv.Itoa(uid))
	return err == nil && dir && o.UID == uid
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
			_ = t.users.Remove(name)
			return err
		}
		return t.users.Chmod(name, 0o700)
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	o, dir, err := ownerOf(t.usersDir, name)
	if err != nil {
		return err
	}
	if !dir || o.UID != uid {
		return fmt.Errorf("%w: %s is not a directory of uid %d", ErrNotOwner, filepath.Join(t.path, "users", name), uid)
	}
	return nil
}
