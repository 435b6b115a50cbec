package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// The site cache is <root>/site: one copy per node of an image the site
// published for every user (see fsx.OpenSiteImage), shared by all users'
// jobs. Root makes site/ for the site user (cache.site_user), 0755, and
// site-refs/ for itself; only the site user, in a child root starts,
// copies into site/, each entry 0444; root records which jobs use which
// entry in site-refs/<key>/<job>, whose directory's mtime is the entry's
// last use; a job user only reads, after checking who owns what.
const (
	siteDir     = "site"
	siteRefsDir = "site-refs"
)

// SiteDir is <root>/site.
func SiteDir(root string) string { return filepath.Join(root, siteDir) }

// openSite takes <root>/site for the site user running this process: the
// root must verify, site/ must be a directory of this uid on the root's
// file system that no one else may write.
func (c *Cache) openSite(euid int) error {
	t, err := OpenTree(c.opts.Root, false)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.checkSiteDir(euid); err != nil {
		return err
	}
	c.root, c.dir = c.opts.Root, SiteDir(c.opts.Root)
	c.refsBase = filepath.Join(c.opts.Root, siteRefsDir)
	return nil
}

// checkSiteDir verifies site/ (owned by uid, 0755 at most, a directory on
// the root's file system) and site-refs/ (root's, not writable by others).
func (t *Tree) checkSiteDir(uid int) error {
	top, err := t.root.Open(".")
	if err != nil {
		return err
	}
	defer top.Close()
	st, err := fsx.LstatAt(top, siteDir)
	if err != nil {
		return fmt.Errorf("site cache %s: %w", SiteDir(t.path), err)
	}
	if !st.IsDir() || st.UID != uid || st.Mode&0o022 != 0 {
		return fmt.Errorf("%w: site cache %s is %s of uid %d, mode %04o; want a directory of uid %d that no one else may write",
			ErrUnsafeRoot, SiteDir(t.path), fsx.Kind(st.FileMode()), st.UID, st.Mode&0o7777, uid)
	}
	rs, err := fsx.LstatAt(top, siteRefsDir)
	if err != nil {
		return fmt.Errorf("site cache refs %s: %w", filepath.Join(t.path, siteRefsDir), err)
	}
	if !rs.IsDir() || rs.UID != 0 || rs.Mode&0o022 != 0 {
		return fmt.Errorf("%w: %s is not root's alone", ErrUnsafeRoot, filepath.Join(t.path, siteRefsDir))
	}
	return nil
}

// HasSite says whether the site cache's directory is there.
func (t *Tree) HasSite() bool {
	st, err := t.root.Lstat(siteDir)
	return err == nil && st.IsDir()
}

// EnsureSite makes site/ for the site user (uid:gid, 0755) and site-refs/
// (root's, 0755), as root; what is there already must pass the checks.
func (t *Tree) EnsureSite(uid, gid int) error {
	if uid == 0 {
		return errors.New("the site cache is never root's: set cache.site_user")
	}
	if err := t.root.Mkdir(siteRefsDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := t.root.Mkdir(siteDir, 0o755); err == nil {
		if err := t.root.Lchown(siteDir, uid, gid); err != nil {
			_ = t.root.Remove(siteDir)
			return err
		}
		if err := t.root.Chmod(siteDir, 0o755); err != nil { // past the umask
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	return t.checkSiteDir(uid)
}

// SiteHit is a site entry a job may use.
type SiteHit struct {
	Key  string
	Path string
	Size int64
}

// LookupSite finds the site entry for image, as the calling user (any
// user): the site cache is verified first (no site cache on the node: no
// entry, and the image is not read), then the image is opened as the
// caller and keyed as a stager keys it, and the entry must be a regular
// file of siteUID that no one may write, of the source's size. ok is false
// for no entry.
func LookupSite(root string, siteUID int, image string) (hit SiteHit, ok bool, err error) {
	t, err := OpenTree(root, false)
	if errors.Is(err, fs.ErrNotExist) {
		return hit, false, nil
	}
	if err != nil {
		return hit, false, err
	}
	defer t.Close()
	if err := t.checkSiteDir(siteUID); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return hit, false, nil
		}
		return hit, false, err
	}
	src, err := openSource(image)
	if err != nil {
		return hit, false, err
	}
	defer src.f.Close()
	key := src.key()
	st, ok, err := t.siteEntry(key, siteUID)
	if err != nil || !ok {
		return hit, false, err
	}
	if st.Mode&0o222 != 0 || st.Size != src.size {
		return hit, false, fmt.Errorf("%w: site entry %s is not a read-only file of the site user of the source's size", ErrUnsafeRoot, key)
	}
	return SiteHit{Key: key, Path: filepath.Join(SiteDir(root), key+".sif"), Size: src.size}, true, nil
}

// AddSiteRef records, as root, that job uses the site entry key, which must
// exist once the ref is recorded (else ErrSiteEntryGone, and no ref). The
// ref directory's mtime is the entry's last use.
func (t *Tree) AddSiteRef(key string, job slurm.JobID, siteUID int) error {
	if !validKey(key) || job.IsZero() {
		return fmt.Errorf("site ref: bad key %q or no job", key)
	}
	refs, err := t.root.OpenRoot(siteRefsDir)
	if err != nil {
		return err
	}
	defer refs.Close()
	if err := refs.Mkdir(key, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := refs.OpenFile(filepath.Join(key, job.String()), os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The ref first, then the entry once more: an evictor moves an entry
	// aside before it looks for refs a last time (see Cache.evict), so
	// either it sees this ref and puts the entry back, or the entry is
	// found gone here and the job does not count on it.
	if _, ok, err := t.siteEntry(key, siteUID); err != nil || !ok {
		_ = refs.Remove(filepath.Join(key, job.String()))
		_ = refs.Remove(key) // if no other job's ref is in it: no directory for a key with no entry
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSiteEntryGone, key, err)
		}
		return fmt.Errorf("%w: %s", ErrSiteEntryGone, key)
	}
	return nil
}

// ErrSiteEntryGone says a site entry was evicted before a job's ref to it
// was recorded: the job must not use it.
var ErrSiteEntryGone = errors.New("the site entry was evicted before the job's ref was recorded")

func (t *Tree) siteEntry(key string, siteUID int) (fsx.Stat, bool, error) {
	d, err := t.root.Open(siteDir)
	if err != nil {
		return fsx.Stat{}, false, err
	}
	defer d.Close()
	st, err := fsx.LstatAt(d, key+".sif")
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	return st, err == nil && st.IsRegular() && st.UID == siteUID, err
}

// ReleaseSiteRefs drops every site ref of job, as root, and says which
// entries it used. It reads at most maxRefKeys keys.
func (t *Tree) ReleaseSiteRefs(job slurm.JobID) ([]string, error) {
	if job.IsZero() {
		return nil, nil
	}
	refs, keys, err := t.siteRefKeys()
	if refs == nil {
		return nil, err
	}
	defer refs.Close()
	var used []string
	errs := []error{ignoreEOF(err)}
	for _, k := range keys {
		err := refs.Remove(filepath.Join(k, job.String()))
		switch {
		case err == nil:
			used = append(used, k)
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	return used, errors.Join(errs...)
}

// siteRefKeys opens site-refs/ (nil, and no error, when there is none)
// and reads at most maxRefKeys of its keys; err is what reading them said.
func (t *Tree) siteRefKeys() (*os.Root, []string, error) {
	refs, err := t.root.OpenRoot(siteRefsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := refs.Open(".")
	if err != nil {
		_ = refs.Close()
		return nil, nil, err
	}
	defer d.Close()
	keys, err := d.Readdirnames(maxRefKeys)
	return refs, keys, err
}

// CleanSiteRefs removes, as root, the empty ref directories of entries that
// are gone (evicted).
func (t *Tree) CleanSiteRefs(siteUID int) error {
	refs, keys, err := t.siteRefKeys()
	if refs == nil {
		return err
	}
	defer refs.Close()
	errs := []error{ignoreEOF(err)}
	for _, k := range keys {
		if _, ok, _ := t.siteEntry(k, siteUID); !ok {
			if err := refs.Remove(k); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SiteUsage is the site cache as root sees it, for metrics: entries and
// their bytes, read from names and sizes alone.
func (t *Tree) SiteUsage(siteUID int) (entries int, bytes int64, err error) {
	d, err := t.root.Open(siteDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(maxRefKeys)
	if ignoreEOF(err) != nil {
		return 0, 0, err
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".sif") || !validKey(strings.TrimSuffix(n, ".sif")) {
			continue
		}
		if st, err := fsx.LstatAt(d, n); err == nil && st.IsRegular() && st.UID == siteUID {
			entries++
			bytes += st.Size
		}
	}
	return entries, bytes, nil
}

// siteLastUse is when a site entry was last used: its metadata's mtime
// (staged, or touched by a stager that found it) or its ref directory's
// (a ref added or released), the later.
func (c *Cache) siteLastUse(key string, meta time.Time) time.Time {
	if st, err := os.Stat(c.refDir(key)); err == nil && st.ModTime().After(meta) {
		return st.ModTime()
	}
	return meta
}

// ReleaseStaleSiteRefs drops, as root, the site refs of every job that
// running does not list (sweep: jobs that ended without an Epilog), and
// says which entries lost one.
func (t *Tree) ReleaseStaleSiteRefs(running map[slurm.JobID]bool) ([]string, error) {
	refs, keys, err := t.siteRefKeys()
	if refs == nil {
		return nil, err
	}
	defer refs.Close()
	errs := []error{ignoreEOF(err)}
	var touched []string
	for _, k := range keys {
		kd, err := refs.Open(k)
		if err != nil {
			continue
		}
		jobs, _ := kd.Readdirnames(maxRefKeys)
		_ = kd.Close()
		for _, j := range jobs {
			if id, err := slurm.ParseJobID(j); err != nil || !running[id] {
				if err := refs.Remove(filepath.Join(k, j)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				} else if !slices.Contains(touched, k) {
					touched = append(touched, k)
				}
			}
		}
	}
	return touched, errors.Join(errs...)
}

// OpenSiteView opens the site cache to read, as any user: what it holds,
// for `cache ls`. It verifies what LookupSite verifies.
func OpenSiteView(root string, siteUID int) (*Cache, error) {
	t, err := OpenTree(root, false)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if err := t.checkSiteDir(siteUID); err != nil {
		return nil, err
	}
	return &Cache{opts: Options{Root: root, Site: true}, seams: realSeams(), root: root, dir: SiteDir(root),
		refsBase: filepath.Join(root, siteRefsDir)}, nil
}

// staleTemp is how old a copy in progress with no sign of life (its
// stager writes to it all the time) must be for gc to be worth a run.
const staleTemp = time.Hour

// SiteGCDue says, as root, whether the site child's gc would have anything
// to do: an entry no job uses that has been idle for keepWarm, metadata
// without its entry, a cut-off copy past PartialKeep, or another copy
// nobody has written to for an hour. The Epilog and sweep start the site
// child only then (a child per job cost more than the rest of an Epilog).
// It reads names and times alone, through the verified tree, at most
// maxRefKeys names.
func (t *Tree) SiteGCDue(siteUID int, keepWarm time.Duration, now time.Time) (bool, error) {
	d, err := t.root.Open(siteDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	names, err := d.Readdirnames(maxRefKeys)
	if ignoreEOF(err) != nil {
		return false, err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		st, err := t.root.Lstat(filepath.Join(siteDir, n))
		if err != nil {
			continue // gone meanwhile
		}
		age := now.Sub(st.ModTime())
		switch {
		case strings.HasPrefix(n, ".tmp-") && isPartial(n):
			if age >= PartialKeep {
				return true, nil
			}
		case strings.HasPrefix(n, ".tmp-"):
			if age >= staleTemp {
				return true, nil
			}
		case strings.HasSuffix(n, ".json") && !have[strings.TrimSuffix(n, ".json")+".sif"]:
			return true, nil
		case strings.HasSuffix(n, ".sif") && validKey(strings.TrimSuffix(n, ".sif")):
			if t.siteIdle(strings.TrimSuffix(n, ".sif"), keepWarm, now) {
				return true, nil
			}
		}
	}
	return false, nil
}

// siteIdle says a site entry has no refs and has not been used (its
// metadata touched, a ref added or released) for keepWarm.
func (t *Tree) siteIdle(key string, keepWarm time.Duration, now time.Time) bool {
	last := time.Time{}
	if st, err := t.root.Lstat(filepath.Join(siteDir, key+".json")); err == nil {
		last = st.ModTime()
	}
	refDir := filepath.Join(siteRefsDir, key)
	if st, err := t.root.Lstat(refDir); err == nil {
		if st.ModTime().After(last) {
			last = st.ModTime()
		}
		if d, err := t.root.Open(refDir); err == nil {
			refs, _ := d.Readdirnames(1)
			_ = d.Close()
			if len(refs) > 0 {
				return false
			}
		}
	}
	return now.Sub(last) >= keepWarm
}
