package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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

// BenchmarkStreams: staging from a source where each read waits, as on a
// network file system with latency on the link (the FUSE stand-in serves
// each stream at 8 MiB/s and streams side by side, as an NFS server answers
// requests in flight), one stream and four against cp in the same run,
// page cache out of the way (direct I/O). It reports each as a ratio to
// cp's time (x_cp: below 1 is faster than cp). go test -run '^$' -bench
// Streams -benchtime 1x ./wrapper/cache (root, /dev/fuse).
func BenchmarkStreams(b *testing.B) {
	dir, mnt := b.TempDir(), b.TempDir()
	image(b, dir, "net.sif", 48<<20)
	testkit.SlowFS(b, dir, mnt, 8<<20)
	src := filepath.Join(mnt, "net.sif")
	cpTime := func() time.Duration {
		out := filepath.Join(b.TempDir(), "cp.sif")
		start := time.Now()
		if o, err := exec.Command("cp", src, out).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, o)
		}
		return time.Since(start)
	}
	for _, streams := range []int{1, 4} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			b.SetBytes(48 << 20)
			var ours, theirs time.Duration
			for range b.N {
				b.StopTimer() // ns/op is ours alone
				theirs += cpTime()
				c := open(b, func(o *Options) { o.Streams = streams })
				b.StartTimer()
				start := time.Now()
				if _, err := c.Stage(context.Background(), src, jid("1"), nil); err != nil {
					b.Fatal(err)
				}
				ours += time.Since(start)
			}
			b.ReportMetric(ours.Seconds()/theirs.Seconds(), "x_cp")
		})
	}
}
