package cache

import (
	"os"
	"syscall"
	"time"
)

// Idle is an entry no job uses, as a reclaim sees it: when it was last
// used and what evicting it frees.
type Idle struct {
	LastUsed time.Time `json:"last_used"`
	Size     int64     `json:"size"`
}

// Idle lists this cache's entries no job refers to, least recently used
// first, at most max of them, and the bytes of all its entries. Sizes are
// the blocks each entry's file holds on disk, not what its metadata says:
// the owner writes the metadata, and only freed blocks give room back.
func (c *Cache) Idle(max int) (all int64, idle []Idle, err error) {
	entries, err := c.Entries()
	if err != nil {
		return 0, nil, err
	}
	idle = []Idle{}
	for _, e := range entries {
		size := onDisk(e.Path)
		all += size
		if len(e.Refs) == 0 && len(idle) < max {
			idle = append(idle, Idle{LastUsed: e.LastUsed, Size: size})
		}
	}
	return all, idle, nil
}

// onDisk is what the file at p holds on disk (0 if it is gone).
func onDisk(p string) int64 {
	st, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return st.Size()
}

// EvictIdle evicts entries no job refers to that were last used before
// before, least recently used first, until at least bytes are freed (or
// none is left). An entry in use or locked right now is passed over.
func (c *Cache) EvictIdle(before time.Time, bytes int64) (n int, freed int64, err error) {
	entries, err := c.Entries()
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if freed >= bytes || !e.LastUsed.Before(before) {
			break
		}
		if len(e.Refs) > 0 {
			continue
		}
		size := onDisk(e.Path)
		ok, err := c.evict(e.Key)
		if err != nil {
			return n, freed, err
		}
		if ok {
			n++
			freed += size
			c.log.WithField("entry", e.Key).Infof("evicted %s (last used %s) to give the node its low-water mark back", e.Key, e.LastUsed.Format("2006-01-02 15:04"))
		}
	}
	return n, freed, nil
}
