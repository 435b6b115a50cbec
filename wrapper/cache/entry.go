package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Meta is what <key>.json records about an entry. It is written once; the
// file's modification time is the entry's last use.
type Meta struct {
	Key      string    `json:"key"`
	Source   string    `json:"source"`
	Size     int64     `json:"size"`
	MTime    time.Time `json:"mtime"`
	SIFID    string    `json:"sif_id,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	StagedAt time.Time `json:"staged_at"`
	// Which file the entry was copied from, as no user can fake: inode,
	// ctime (set by the kernel at every change) and owner. The key is a
	// hash of these too (see source.key). Dev is for people: NFS's changes
	// at every mount.
	Dev   uint64    `json:"dev,omitempty"`
	Ino   uint64    `json:"ino,omitempty"`
	CTime time.Time `json:"ctime,omitzero"`
	UID   int       `json:"uid"`
}

// Entry is a published image with what is known about it.
type Entry struct {
	Meta
	Path     string    `json:"path"`
	LastUsed time.Time `json:"last_used"`
	Refs     []string  `json:"refs"` // job ids
}

func (c *Cache) entryPath(key string) string { return c.path(key + ".sif") }
func (c *Cache) metaPath(key string) string  { return c.path(key + ".json") }
func (c *Cache) lockPath(key string) string  { return c.path(key + ".lock") }

func (c *Cache) readMeta(key string) (Meta, error) {
	var m Meta
	data, err := fsx.ReadRegular(c.metaPath(key), 1<<20, true)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", c.metaPath(key), err)
	}
	return m, nil
}

func (c *Cache) writeMeta(m Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if c.opts.Site {
		mode = 0o644 // every user may see what the site cache holds
	}
	return fsx.WriteFile(c.metaPath(m.Key), append(data, '\n'), mode, fsx.Durable)
}

// touch records a use of the entry.
func (c *Cache) touch(key string, now time.Time) {
	_ = os.Chtimes(c.metaPath(key), now, now)
}

// published reports whether key holds a complete copy of src.
func (c *Cache) published(key string, src *source) bool {
	st, err := os.Lstat(c.entryPath(key))
	if err != nil || !st.Mode().IsRegular() || st.Size() != src.size {
		return false
	}
	m, err := c.readMeta(key)
	return err == nil && m.Size == src.size && m.SIFID == src.sifID &&
		m.Ino == src.ino && m.CTime.Equal(src.ctime) && m.UID == src.uid
}

// Entries lists the published entries, oldest use first.
func (c *Cache) Entries() ([]Entry, error) {
	names, err := filepath.Glob(filepath.Join(c.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, n := range names {
		key := strings.TrimSuffix(filepath.Base(n), ".json")
		if !validKey(key) {
			continue
		}
		e, err := c.entry(key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile, or metadata without an entry (gc removes those)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sortByLastUse(out)
	return out, nil
}

func (c *Cache) entry(key string) (Entry, error) {
	m, err := c.readMeta(key)
	if err != nil {
		return Entry{}, err
	}
	if _, err := os.Lstat(c.entryPath(key)); err != nil {
		return Entry{}, err
	}
	st, err := os.Stat(c.metaPath(key))
	if err != nil {
		return Entry{}, err
	}
	refs, err := c.refs(key)
	if err != nil {
		return Entry{}, err
	}
	last := st.ModTime()
	if c.opts.Site {
		last = c.siteLastUse(key, last)
	}
	return Entry{Meta: m, Path: c.entryPath(key), LastUsed: last, Refs: refs}, nil
}
