package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestStreamsCopy: several streams make the same entry as one, from a
// local file and from a slow FUSE source; a copy cut off between steps
// holds the image's first bytes and nothing past them, and the next stager
// resumes it with streams.
func TestStreamsCopy(t *testing.T) {
	c := open(t, func(o *Options) { o.Streams = 4 })
	src := image(t, t.TempDir(), "wide.sif", 5<<20+12345)
	r, err := c.Stage(context.Background(), src, jid("1"), nil)
	testkit.Must(t, err)
	if !bytes.Equal(testkit.ReadFile(t, r.Path), testkit.ReadFile(t, src)) {
		t.Fatal("four streams made an entry that differs from the image")
	}

	// 1 MiB/s per stream, 4 MiB/s in all: 6 MiB takes longer than 600 ms.
	dir, mnt := t.TempDir(), t.TempDir()
	src = image(t, dir, "slow.sif", 6<<20)
	testkit.SlowFS(t, dir, mnt, 1<<20)
	slow := filepath.Join(mnt, "slow.sif")
	c = open(t, func(o *Options) { o.Streams = 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	_, err = c.Stage(ctx, slow, jid("2"), nil)
	cancel()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Stage = %v; want ErrTimeout, the copy kept", err)
	}
	parts, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*-part*"))
	if len(parts) != 1 {
		t.Fatalf("cut-off copies %v, want one", parts)
	}
	part, whole := testkit.ReadFile(t, parts[0]), testkit.ReadFile(t, src)
	if len(part) == 0 || len(part) >= len(whole) || !bytes.Equal(part, whole[:len(part)]) {
		t.Fatalf("the cut-off copy holds %d bytes, not the image's first bytes (a hole, or past them)", len(part))
	}
	r, err = c.Stage(context.Background(), slow, jid("3"), nil)
	testkit.Must(t, err)
	if r.Resumed != int64(len(part)) || !bytes.Equal(testkit.ReadFile(t, r.Path), whole) {
		t.Errorf("resumed %d of the %d kept; the entry equals the image: %v", r.Resumed, len(part), bytes.Equal(testkit.ReadFile(t, r.Path), whole))
	}
}

// TestStreamsFor: "auto" is one stream on a local file system; a count is
// taken as it is.
func TestStreamsFor(t *testing.T) {
	f, err := os.Open(image(t, t.TempDir(), "x.sif", 1<<10))
	testkit.Must(t, err)
	defer f.Close()
	if n, kind := streamsFor(0, f); n != 1 || kind != "" {
		t.Errorf("auto on a local file: %d streams (%q), want 1", n, kind)
	}
	if n, _ := streamsFor(3, f); n != 3 {
		t.Errorf("3 configured: %d streams", n)
	}
}
