package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// fill writes n fake entries and refs refs directly, as a busy node would have.
func fill(b *testing.B, c *Cache, n, refs int) {
	b.Helper()
	for i := range n {
		key := fmt.Sprintf("img%05d-%016x", i, i)
		testkit.Must(b, os.WriteFile(c.entryPath(key), []byte("x"), 0o400))
		m, _ := json.Marshal(Meta{Key: key, Source: "/scratch/" + key + ".sif", Size: 1, StagedAt: time.Now()})
		testkit.Must(b, os.WriteFile(c.metaPath(key), m, 0o600))
	}
	for i := range refs {
		key := fmt.Sprintf("img%05d-%016x", i%n, i%n)
		testkit.Must(b, os.MkdirAll(c.refDir(key), 0o700))
		testkit.Must(b, os.WriteFile(filepath.Join(c.refDir(key), fmt.Sprint(100000+i)), nil, 0o600))
	}
}

// BenchmarkList: cache ls with 1,000 and 10,000 entries and five refs
// each (target: 100 ms at 1,000; linear growth).
func BenchmarkList(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := open(b, nil)
			fill(b, c, n, 5*n)
			b.ResetTimer()
			for b.Loop() {
				es, err := c.Entries()
				if err != nil || len(es) != n {
					b.Fatal(len(es), err)
				}
				if _, err := c.Usage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGC: cache gc (nothing to remove: every entry referenced or warm)
// with 1,000 and 10,000 entries and five refs each (target: 100 ms at 1,000).
func BenchmarkGC(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := open(b, func(o *Options) { o.KeepWarm = time.Hour })
			fill(b, c, n, 5*n)
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.GC(GCOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
