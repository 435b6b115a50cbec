package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// maxRelock bounds how often tryLocked takes a lock again because its file
// was removed meanwhile.
const maxRelock = 8

// tryLocked takes l by try (TryLock, TryRLock, or a context form of them)
// and keeps it only if l's file is still the one at l.Path(): eviction
// removes an entry's lock file with the entry (so lock files do not pile
// up, one per image ever staged), and a lock on a file that was removed
// locks nothing, since the next stager creates and locks a new one. If the
// file changed, l is unlocked (which closes it) and taken again, on
// whatever file the path names now.
func tryLocked(l *flock.Flock, try func() (bool, error)) (bool, error) {
	for range maxRelock {
		ok, err := try()
		if !ok || err != nil {
			return ok, err
		}
		held, err := l.Stat()
		if err != nil {
			return false, errors.Join(err, l.Unlock())
		}
		now, err := os.Lstat(l.Path())
		if err == nil && os.SameFile(held, now) {
			return true, nil
		}
		if err := l.Unlock(); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("locking %s: the lock file keeps being replaced", l.Path())
}

// dropLock removes key's lock file when nothing of key is left: no entry,
// no copy cut off or in progress. The caller holds the lock exclusively,
// so no stager is working on key; one that opened the file before it goes
// finds, once it has the lock, that the path names another file or none,
// and takes the lock again (tryLocked).
func (c *Cache) dropLock(key string) {
	if _, err := os.Lstat(c.entryPath(key)); err == nil {
		return
	}
	if m, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-"+key+"-*")); len(m) > 0 {
		return
	}
	_ = os.Remove(c.lockPath(key))
}
