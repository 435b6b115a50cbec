package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoSpace says an image does not fit: not enough free space above the
// reserve, or over the user's quota, even after eviction.
var ErrNoSpace = errors.New("no space in the node cache")

// Usage is the space picture of this user's cache.
type Usage struct {
	Used    int64  `json:"used"`    // bytes in this user's entries and copies in progress
	Quota   uint64 `json:"quota"`   // most this user may use
	Free    uint64 `json:"free"`    // free on the cache filesystem
	Reserve uint64 `json:"reserve"` // always left free
	Total   uint64 `json:"total"`   // size of the cache filesystem
}

// Usage measures the cache filesystem and this user's part of it.
func (c *Cache) Usage() (Usage, error) {
	d, err := c.seams.diskUsage(c.dir)
	if err != nil {
		return Usage{}, fmt.Errorf("measuring %s: %w", c.dir, err)
	}
	used, err := c.used()
	if err != nil {
		return Usage{}, err
	}
	return Usage{Used: used, Quota: c.opts.Quota.Of(d.Total), Free: d.Free, Reserve: c.opts.Reserve.Of(d.Total), Total: d.Total}, nil
}

func (c *Cache) used() (int64, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".sif") && !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n, nil
}

// fits says why size more bytes do not fit, or "" when they do.
func (u Usage) fits(size int64) string {
	switch {
	case u.Quota > 0 && uint64(u.Used+size) > u.Quota:
		return fmt.Sprintf("%s more would take this user's cache to %s, over its quota of %s",
			HumanBytes(size), HumanBytes(u.Used+size), HumanBytes(int64(u.Quota)))
	case u.Free < uint64(size)+u.Reserve:
		return fmt.Sprintf("%s needed, %s free, %s kept in reserve", HumanBytes(size), HumanBytes(int64(u.Free)), HumanBytes(int64(u.Reserve)))
	}
	return ""
}

// makeRoom evicts unreferenced entries, least recently used first, until
// size bytes fit. It never evicts keep (the entry being staged).
func (c *Cache) makeRoom(size int64, keep string) error {
	for {
		u, err := c.Usage()
		if err != nil {
			return err
		}
		why := u.fits(size)
		if why == "" {
			return nil
		}
		evicted, err := c.evictOne(keep)
		if err != nil {
			return err
		}
		if !evicted && !c.dropPartial(keep) {
			return fmt.Errorf("%w: %s", ErrNoSpace, why)
		}
	}
}

// evictOne removes the least recently used entry no job refers to.
func (c *Cache) evictOne(keep string) (bool, error) {
	entries, err := c.Entries()
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Key == keep || len(e.Refs) > 0 {
			continue
		}
		ok, err := c.evict(e.Key)
		if err != nil {
			return false, err
		}
		if ok {
			c.log.WithField("entry", e.Key).Infof("evicted %s (last used %s) to make room", e.Key, e.LastUsed.Format("2006-01-02 15:04"))
			return true, nil
		}
	}
	return false, nil
}

// dropPartial removes the oldest copy another image's stager cut off
// (see PartialKeep), when no entry is left to evict: an image that fits
// now goes before one that might be finished later.
func (c *Cache) dropPartial(keep string) bool {
	names, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-*-part*"))
	sort.Slice(names, func(i, j int) bool { return modTime(names[i]).Before(modTime(names[j])) })
	for _, n := range names {
		key, ok := tempKey(n)
		if !ok || key == keep {
			continue
		}
		lock := NewLock(c.lockPath(key))
		got, err := tryLocked(lock, lock.TryLock)
		if err == nil && got && os.Remove(n) == nil {
			c.dropLock(key)
			lock.Close()
			c.log.Infof("removed %s, a cut-off copy, to make room", filepath.Base(n))
			return true
		}
		lock.Close()
	}
	return false
}

// evict removes an entry if nobody holds its lock and no job refers to it,
// and its lock file with it (see tryLocked: a stager that opened the old
// file takes the lock again on the path's new one).
func (c *Cache) evict(key string) (bool, error) {
	lock := NewLock(c.lockPath(key))
	defer lock.Close()
	ok, err := tryLocked(lock, lock.TryLock)
	if err != nil || !ok {
		return false, err
	}
	if refs, err := c.refs(key); err != nil || len(refs) > 0 {
		return false, err
	}
	// The entry goes first (metadata without an entry is never used), moved
	// aside before the refs are read once more: root records a site ref
	// without this lock and then looks for the entry (Tree.AddSiteRef), so
	// a job that pinned the entry meanwhile either finds it gone or has
	// its ref seen here, and the entry is put back.
	aside := c.path(evictedName(key))
	if err := os.Rename(c.entryPath(key), aside); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if c.seams.evicting != nil {
		c.seams.evicting(key)
	}
	if refs, err := c.refs(key); err != nil || len(refs) > 0 {
		if rerr := os.Rename(aside, c.entryPath(key)); rerr != nil && !os.IsNotExist(rerr) {
			err = errors.Join(err, rerr)
		}
		return false, err
	}
	if err := os.Remove(aside); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if err := os.Remove(c.metaPath(key)); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	_ = os.Remove(c.refDir(key))
	c.dropLock(key)
	return true, nil
}

// evictedName is where evict moves an entry aside before it removes it.
func evictedName(key string) string { return ".tmp-" + key + "-evict" }

// IsEntryName says whether base names an entry of a cache directory, in
// place (<key>.sif) or as evict moves it aside before removing it
// (.tmp-<key>-evict): the names a process left over from an ended job may
// hold open after the entry was evicted. A partial copy's name
// (.tmp-<key>-<random>) is not one: a stager of a running job holds it.
func IsEntryName(base string) bool {
	if k, ok := strings.CutSuffix(base, ".sif"); ok {
		return validKey(k)
	}
	k, ok := strings.CutPrefix(base, ".tmp-")
	if !ok {
		return false
	}
	k, ok = strings.CutSuffix(k, "-evict")
	return ok && validKey(k)
}

func sortByLastUse(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].LastUsed.Before(es[j].LastUsed) })
}

// HumanBytes writes a byte count for people: 1.5 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// tempKey gives the key of a temporary copy's name, ".tmp-<key>-<random>".
func tempKey(name string) (string, bool) {
	rest, ok := strings.CutPrefix(filepath.Base(name), ".tmp-")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "-")
	if i < 0 || !validKey(rest[:i]) {
		return "", false
	}
	return rest[:i], true
}
