package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fill writes n fake entries and refs refs directly, as a busy node would have.
func fill(b *testing.B, c *Cache, n, refs int) {
	b.Helper()
	for i := range n {
		key := fmt.Sprintf("img%04d-%016x", i, i)
		os.WriteFile(c.entryPath(key), []byte("x"), 0o400)
		m, _ := json.Marshal(Meta{Key: key, Source: "/scratch/" + key + ".sif", Size: 1, StagedAt: time.Now()})
		os.WriteFile(c.metaPath(key), m, 0o600)
	}
	for i := range refs {
		key := fmt.Sprintf("img%04d-%016x", i%n, i%n)
		os.MkdirAll(c.refDir(key), 0o700)
		os.WriteFile(filepath.Join(c.refDir(key), fmt.Sprint(100000+i)), nil, 0o600)
	}
}

// BenchmarkList: cache ls with 1,000 entries and 5,000 refs (target: ≤ 100 ms).
func BenchmarkList(b *testing.B) {
	c := open(b, nil)
	fill(b, c, 1000, 5000)
	b.ResetTimer()
	for b.Loop() {
		es, err := c.Entries()
		if err != nil || len(es) != 1000 {
			b.Fatal(len(es), err)
		}
		if _, err := c.Usage(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGC: cache gc (nothing to remove: every entry referenced or warm)
// with 1,000 entries and 5,000 refs (target: ≤ 100 ms).
func BenchmarkGC(b *testing.B) {
	c := open(b, func(o *Options) { o.KeepWarm = time.Hour })
	fill(b, c, 1000, 5000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.GC(GCOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
