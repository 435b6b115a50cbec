// Package cache keeps node-local copies of container images: one directory
// per user under the cache root, entries published by rename and never
// changed afterwards, one stager per entry per node (a file lock), refs per
// job, and eviction of unreferenced entries, least recently used first.
package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Options configure a cache.
type Options struct {
	Root         string      // cache.dir
	UID, GID     int         // whose cache; Open uses the process's ids when both are 0 and it is not root
	Quota        config.Size // cache.user_quota
	Reserve      config.Size // cache.reserve
	KeepWarm     time.Duration
	StageTimeout time.Duration
	Verify       string // "size" or "sha256"
	// Streams reads a source in that many ranges at once; 0 decides per
	// source (see streamsFor).
	Streams int
	// FallbackDir is where a user without a usable root-made cache keeps one:
	// <FallbackDir>/sifkernel-<uid>. Empty means $TMPDIR, else /tmp.
	FallbackDir string
	Log         logrus.FieldLogger
	// Site opens the site cache (<Root>/site) for the site user running
	// this process, instead of a user's: only the site's own images (fsx.OpenSiteImage)
	// are staged, entries are 0444, and refs are root's to record.
	Site bool
	// SiteDirs, when set, are the only trees the site cache stages from.
	SiteDirs []string
	// SiteOwners are the uids besides root whose images the site cache
	// shares (cache.site_owners; see fsx.OpenSiteImage).
	SiteOwners []int
}

// Cache is one user's part of the node cache.
type Cache struct {
	opts     Options
	seams    seams
	refsBase string // refs/<key>/<job>: <dir>/refs, or <root>/site-refs for the site cache
	root     string // the cache root in use (the configured one, or the fallback)
	dir      string // <root>/users/<uid>
	log      logrus.FieldLogger
}

// ErrUnsafeRoot marks a cache directory sifkernel refuses to use.
var ErrUnsafeRoot = errors.New("unsafe cache directory")

// Open finds (and as root, creates) the cache root and this user's directory.
// As root the configured root is created root:root 0755. A user uses
// <root>/users/<uid> when a root hook made it, and otherwise a cache of its
// own under FallbackDir. A root or user directory that is a symlink, owned by
// someone else, or writable by group or others is refused.
func Open(opts Options) (*Cache, error) {
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	if opts.StageTimeout <= 0 {
		opts.StageTimeout = 120 * time.Second
	}
	euid := os.Geteuid()
	if opts.UID == 0 && opts.GID == 0 && euid != 0 {
		opts.UID, opts.GID = os.Getuid(), os.Getgid()
	}
	c := &Cache{opts: opts, seams: realSeams(), log: opts.Log}
	var err error
	switch {
	case opts.Site && euid == 0:
		err = errors.New("the site cache is staged by the site user, never by root")
	case opts.Site:
		err = c.openSite(euid)
	case euid == 0:
		err = c.openAsRoot()
	default:
		err = c.openAsUser(euid)
	}
	if err != nil {
		return nil, err
	}
	if c.refsBase == "" {
		c.refsBase = filepath.Join(c.dir, RefsDir)
	}
	return c, nil
}

func (c *Cache) openAsRoot() error {
	t, err := OpenTree(c.opts.Root, true)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.EnsureUserDir(c.opts.UID, c.opts.GID); err != nil {
		return err
	}
	c.root, c.dir = c.opts.Root, filepath.Join(c.opts.Root, "users", strconv.Itoa(c.opts.UID))
	return nil
}

// openAsUser uses <root>/users/<uid> when a root hook made it in a verified
// root, and otherwise a cache of the user's own under FallbackDir.
func (c *Cache) openAsUser(euid int) error {
	if euid != c.opts.UID {
		return fmt.Errorf("opening the cache of uid %d as uid %d: only root may", c.opts.UID, euid)
	}
	if _, err := os.Lstat(c.opts.Root); err == nil {
		t, err := OpenTree(c.opts.Root, false)
		if err != nil {
			return err
		}
		defer t.Close()
		shared, err := c.ownDir(t)
		if err != nil || shared {
			return err
		}
	}
	base := c.opts.FallbackDir
	if base == "" {
		base = os.TempDir()
	}
	c.root = filepath.Join(base, "sifkernel-"+strconv.Itoa(c.opts.UID))
	if err := ensureDir(c.root, 0o700, c.opts.UID, c.opts.GID); err != nil {
		return err
	}
	if err := ensureDir(filepath.Join(c.root, "users"), 0o700, c.opts.UID, c.opts.GID); err != nil {
		return err
	}
	c.dir = filepath.Join(c.root, "users", strconv.Itoa(c.opts.UID))
	return ensureDir(c.dir, 0o700, c.opts.UID, c.opts.GID)
}

// ownDir takes users/<uid> of a verified tree if it exists (shared is then
// true). A mode the user loosened is put back to 0700: the directory is the
// user's own, and this runs as that user.
func (c *Cache) ownDir(t *Tree) (shared bool, err error) {
	name := strconv.Itoa(c.opts.UID)
	if t.users == nil {
		return false, nil
	}
	st, err := fsx.LstatAt(t.usersDir, name) // a mount there is refused
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.root, c.dir = c.opts.Root, filepath.Join(c.opts.Root, "users", name)
	perm := fs.FileMode(st.Mode & 0o777)
	switch {
	case !st.IsDir() || st.UID != c.opts.UID:
		return true, checkDir(c.dir, c.opts.UID, 0o700)
	case perm&0o077 != 0:
		c.log.Warnf("%s had mode %v; set it back to 0700 (group and others must not reach your images)", c.dir, perm)
		if err := t.users.Chmod(name, 0o700); err != nil {
			return true, fmt.Errorf("%w: %s has mode %v and could not be set to 0700: %w", ErrUnsafeRoot, c.dir, perm, err)
		}
	}
	return true, nil
}

// ensureDir creates dir (not its parents) with mode and owner if it is
// missing, then checks it is safe to use.
func ensureDir(dir string, mode fs.FileMode, uid, gid int) error {
	err := os.Mkdir(dir, mode)
	switch {
	case err == nil:
		// Mkdir applies the umask and keeps the creator as owner: set both.
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(dir, uid, gid); err != nil {
				return err
			}
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("creating cache directory %s: %w", dir, err)
	}
	return checkDir(dir, uid, mode)
}

// checkDir refuses a directory that is a symlink, not owned by uid, or
// grants more than mode allows to group or others.
func checkDir(dir string, uid int, mode fs.FileMode) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cache directory %s: %w", dir, err)
	}
	o, ok := fsx.OwnerOf(st)
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symbolic link", ErrUnsafeRoot, dir)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeRoot, dir)
	case !ok:
		return fmt.Errorf("%w: %s: no owner information", ErrUnsafeRoot, dir)
	case o.UID != uid:
		return fmt.Errorf("%w: %s is owned by uid %d, not %d (someone may have created it to tamper with images)",
			ErrUnsafeRoot, dir, o.UID, uid)
	case st.Mode().Perm()&^mode&0o077 != 0:
		return fmt.Errorf("%w: %s has mode %v: group or others may write or read more than %v allows",
			ErrUnsafeRoot, dir, st.Mode().Perm(), mode)
	}
	return nil
}

// Dir is this user's cache directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) path(name string) string { return filepath.Join(c.dir, name) }

// NewLock is the lock file at path: made 0600 if missing, opened without
// following a symbolic link and without blocking (a FIFO in its place must
// not hang a stager, a hook's child or a TaskProlog).
func NewLock(path string) *flock.Flock {
	return flock.New(path, flock.SetPermissions(0o600), flock.SetFlag(os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC))
}
