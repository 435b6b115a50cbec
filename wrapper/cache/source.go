package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// source is an image opened for staging.
type source struct {
	path  string // as given
	real  string // symlinks resolved
	f     *os.File
	size  int64
	mtime time.Time
	sifID string // empty for images that are not SIF files
	// ino and ctime say which file this is, as no user can fake: a write
	// or chmod sets ctime to now, whatever mtime is made to say. dev is
	// recorded, never compared: an NFS mount's device number is the
	// kernel's pick at mount time and changes when a node restarts.
	dev, ino uint64
	ctime    time.Time
	uid      int
}

// openSource opens and identifies an image. A directory (a sandbox) cannot be
// staged; a file with SIF magic must have a usable header.
func openSource(path string) (*source, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, unwrapPath(err))
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(real); err == nil && st.IsDir() {
		return nil, fmt.Errorf("image %s: a sandbox directory cannot be staged", path)
	}
	f, err := fsx.OpenRegular(real, false) // a FIFO must not hang the stager
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, unwrapPath(err))
	}
	s := &source{path: path, real: real, f: f}
	if err := s.identify(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// openSiteSource opens an image for the site cache: only one of the site's
// own (fsx.OpenSiteImage: owned by root or owners all the way, no user may
// change it, every user may read it), and, with dirs, only from under one
// of them. It runs as the site user, so nothing only a job user (or root)
// can read is ever opened.
func openSiteSource(path string, dirs []string, owners []int) (*source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, real, err := fsx.OpenSiteImage(abs, owners)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if !InSiteDirs(real, dirs) {
		f.Close()
		return nil, fmt.Errorf("image %s: %w: not under cache.site_dirs", path, fsx.ErrNotPublic)
	}
	s := &source{path: path, real: real, f: f}
	if err := s.identify(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// InSiteDirs says whether the resolved path real lies under one of dirs
// (cache.site_dirs); no dirs means anywhere.
func InSiteDirs(real string, dirs []string) bool {
	return len(dirs) == 0 || slices.ContainsFunc(dirs, func(d string) bool {
		rel, err := filepath.Rel(filepath.Clean(d), real)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	})
}

func (s *source) identify() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("image %s: %w", s.path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("image %s is not a regular file (a sandbox directory cannot be staged)", s.path)
	}
	s.size, s.mtime = st.Size(), st.ModTime()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino, s.ctime, s.uid = sys.Dev, sys.Ino, time.Unix(sys.Ctim.Unix()), int(sys.Uid)
	}
	if sifimage.HasMagic(s.f) {
		info, err := sifimage.Inspect(s.f)
		if err != nil {
			return fmt.Errorf("image %s: %w", s.path, err)
		}
		s.sifID = info.ID
	}
	return nil
}

// changed reports whether the open file was modified since identify.
func (s *source) changed() bool {
	st, err := s.f.Stat()
	if err != nil || st.Size() != s.size || !st.ModTime().Equal(s.mtime) {
		return true
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && !time.Unix(sys.Ctim.Unix()).Equal(s.ctime)
}

// stamp names this very file, as it is now: a copy of it cut off by a
// deadline is resumed only by a stager that finds the same stamp (see
// partialPath). A source written to since, even with its size and mtime
// put back, has another ctime and so another stamp.
func (s *source) stamp() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00%d\x00%d\x00%s", s.ino, s.ctime.UnixNano(), s.size, s.mtime.UnixNano(), s.sifID)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// key names an entry: the image's base name for people, and a hash of its
// resolved path, size, mtime and SIF id, and of which file it is (inode,
// ctime, owner), so a changed source gets a new key. Size, mtime and SIF
// id are whatever the file's writer makes them; ctime no user can set, so
// another file put at the same path, or the same file rewritten with its
// size and mtime put back, is never taken for the one an entry was copied
// from. The device number is not in it: NFS's changes at every mount, and
// a node's copies would be lost at its restart; another file system
// mounted at the same path is the mounter's (root's, or a user's FUSE
// under her own directory, for her own cache).
func (s *source) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%d\x00%d\x00%d", s.real, s.size, s.mtime.UnixNano(), s.sifID, s.ino, s.ctime.UnixNano(), s.uid)
	name := strings.TrimSuffix(filepath.Base(s.real), ".sif")
	name = strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "._-")
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" {
		name = "image"
	}
	return name + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{16}$`)

// validKey guards names read back from the directory.
func validKey(k string) bool { return keyPattern.MatchString(k) }

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Key is the entry key image would get, without staging it.
func Key(image string) (string, error) {
	src, err := openSource(image)
	if err != nil {
		return "", err
	}
	defer src.f.Close()
	return src.key(), nil
}
