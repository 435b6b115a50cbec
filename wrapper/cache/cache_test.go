package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// image writes a real SIF of about size bytes with random content.
func image(t testing.TB, dir, name string, size int) string {
	t.Helper()
	rootfs := make([]byte, size)
	rand.Read(rootfs)
	p := filepath.Join(dir, name)
	if err := sifimage.Build(p, bytes.NewReader(rootfs)); err != nil {
		t.Fatal(err)
	}
	return p
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// open makes a cache in a fresh root with roomy defaults.
func open(t testing.TB, mod func(*Options)) *Cache {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cache")
	o := Options{Root: root, FallbackDir: filepath.Dir(root), StageTimeout: 30 * time.Second, Verify: "size", Log: quietLog()}
	o.UID, o.GID = os.Getuid(), os.Getgid()
	if mod != nil {
		mod(&o)
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStageAndHit(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "bert.sif", 300<<10)
	var last, total int64
	r1, err := c.Stage(context.Background(), src, jid("101"), func(done, of int64) { last, total = done, of })
	if err != nil {
		t.Fatal(err)
	}
	if last != r1.Bytes || total != r1.Bytes {
		t.Errorf("progress ended at %d of %d, want %d", last, total, r1.Bytes)
	}
	if !r1.Staged || !r1.Copied || !strings.HasPrefix(r1.Key, "bert-") || filepath.Dir(r1.Path) != c.Dir() {
		t.Fatalf("first stage = %+v", r1)
	}
	r2, err := c.Stage(context.Background(), src, jid("102"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Copied || r2.Path != r1.Path {
		t.Errorf("second stage = %+v, want a hit on %s", r2, r1.Path)
	}
	st, _ := os.Stat(r1.Path)
	if st.Mode().Perm() != 0o400 {
		t.Errorf("entry mode %v, want 0400", st.Mode().Perm())
	}
	a := testkit.ReadFile(t, src)
	b := testkit.ReadFile(t, r1.Path)
	if !slices.Equal(a, b) {
		t.Error("entry differs from the source")
	}
	es, _ := c.Entries()
	if len(es) != 1 || !slices.Equal(es[0].Refs, []string{"101", "102"}) {
		t.Errorf("entries %+v, want one with refs 101 and 102", es)
	}
	for range 2 {
		if err := c.Release(jid("101")); err != nil {
			t.Fatal(err)
		}
	}
	if es, _ := c.Entries(); !slices.Equal(es[0].Refs, []string{"102"}) {
		t.Errorf("after releasing 101 refs are %v", es[0].Refs)
	}
}

func TestKeys(t *testing.T) {
	c := open(t, nil)
	dir := t.TempDir()
	src := image(t, dir, "a.sif", 4096)
	link := filepath.Join(dir, "link.sif")
	testkit.Must(t, os.Symlink(src, link))
	r1, _ := c.Stage(context.Background(), src, slurm.JobID{}, nil)
	r2, err := c.Stage(context.Background(), link, slurm.JobID{}, nil)
	if err != nil || r2.Key != r1.Key || r2.Copied {
		t.Errorf("a symlink to the same image: %+v %v, want key %s and a hit", r2, err, r1.Key)
	}
	later := time.Now().Add(time.Minute)
	testkit.Must(t, os.Chtimes(src, later, later))
	r3, err := c.Stage(context.Background(), src, slurm.JobID{}, nil)
	if err != nil || r3.Key == r1.Key || !r3.Copied {
		t.Errorf("a changed source must get a new key: %+v %v", r3, err)
	}
	other := image(t, t.TempDir(), "a.sif", 4096)
	if r4, _ := c.Stage(context.Background(), other, slurm.JobID{}, nil); r4.Key == r1.Key || r4.Key == r3.Key {
		t.Errorf("another image with the same name got key %s", r4.Key)
	}
}

// TestKeyOutlivesARemount: an NFS mount's device number is the kernel's
// pick at mount time, and a node's reset changed it on the VM cluster's
// soak: the image's key with it, so the node's copies (entries and cut-off
// ones alike) were never found again. The same file (inode, ctime, size,
// mtime, SIF id, path, owner) with another device number keeps its key,
// its stamp (what resumes a cut-off copy) and its entry.
func TestKeyOutlivesARemount(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "a.sif", 4096)
	r, err := c.Stage(context.Background(), src, slurm.JobID{}, nil)
	testkit.Must(t, err)
	s, err := openSource(src)
	testkit.Must(t, err)
	defer s.f.Close()
	key, stamp := s.key(), s.stamp()
	s.dev += 7 // remounted
	if s.key() != key || s.stamp() != stamp {
		t.Errorf("another device number: key %s, stamp %s; want %s and %s", s.key(), s.stamp(), key, stamp)
	}
	if key != r.Key || !c.published(key, s) {
		t.Errorf("the entry %s (key now %s) is not found for the same file on another device number", r.Key, key)
	}
	s.ino++ // another file
	if s.key() == key || s.stamp() == stamp || c.published(key, s) {
		t.Error("another inode kept the key, the stamp or the entry")
	}
}

func TestBadSources(t *testing.T) {
	c := open(t, nil)
	dir := t.TempDir()
	good := image(t, dir, "good.sif", 8192)
	data := testkit.ReadFile(t, good)
	corrupt := filepath.Join(dir, "corrupt.sif")
	testkit.Must(t, os.WriteFile(corrupt, data[:len(data)-100], 0o644))
	loop := filepath.Join(dir, "loop.sif")
	testkit.Must(t, os.Symlink(loop, loop))
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "gone.sif"), "no such file"},
		{"directory", dir, "sandbox directory cannot be staged"},
		{"corrupt", corrupt, "corrupt SIF"},
		{"symlink loop", loop, "too many links"},
		{"under a file", good + "/x", "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Stage(context.Background(), tt.path, jid("1"), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Stage = %v, want an error naming %s and saying %q", err, tt.path, tt.want)
			}
			if r.Path != tt.path || r.Staged {
				t.Errorf("result %+v should point at the source", r)
			}
		})
	}
	assertClean(t, c)
}

// assertClean fails if the cache holds entries or temporary files.
func assertClean(t *testing.T, c *Cache) {
	t.Helper()
	for _, pat := range []string{"*.sif", ".tmp-*"} {
		if m, _ := filepath.Glob(filepath.Join(c.Dir(), pat)); len(m) > 0 {
			t.Errorf("cache holds %v", m)
		}
	}
}

// withCopy replaces c's copy step, with a small chunk size.
func withCopy(c *Cache, f func(ctx context.Context, n int, dst *os.File, src io.Reader) (int64, error)) {
	n := 0
	c.seams.copyChunk = func(ctx context.Context, dst *os.File, src io.Reader) (int64, error) { n++; return f(ctx, n, dst, src) }
	c.seams.chunk = 64 << 10
}

func TestCopyFaults(t *testing.T) {
	tests := []struct {
		name string
		copy func(ctx context.Context, n int, dst *os.File, src io.Reader) (int64, error)
		want string
		is   error
	}{
		{name: "disk full", want: "no space", is: ErrNoSpace, copy: func(_ context.Context, n int, dst *os.File, src io.Reader) (int64, error) {
			if n == 2 {
				return 100, syscall.ENOSPC
			}
			return dst.ReadFrom(src)
		}},
		{name: "io error", want: "input/output error", is: syscall.EIO, copy: func(_ context.Context, n int, dst *os.File, src io.Reader) (int64, error) {
			if n == 3 {
				return 0, syscall.EIO
			}
			return dst.ReadFrom(src)
		}},
		{name: "short copy", want: "copied", copy: func(_ context.Context, n int, dst *os.File, src io.Reader) (int64, error) {
			if n == 2 {
				return 0, nil // the copy stops early without an error
			}
			return dst.ReadFrom(src)
		}},
		{name: "corrupted in flight", want: "not a valid SIF", copy: func(_ context.Context, n int, dst *os.File, src io.Reader) (int64, error) {
			w, err := dst.ReadFrom(src)
			if n == 1 && err == nil {
				_, err = dst.WriteAt(make([]byte, 64), 0)
			}
			return w, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t, nil)
			src := image(t, t.TempDir(), "x.sif", 300<<10)
			withCopy(c, tt.copy)
			r, err := c.Stage(context.Background(), src, jid("1"), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Stage = %v, want %q", err, tt.want)
			}
			if r.Path != src {
				t.Errorf("on failure the path to use is the source, got %s", r.Path)
			}
			assertClean(t, c)
		})
	}
}

func TestSourceChangesDuringCopy(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "x.sif", 300<<10)
	withCopy(c, func(_ context.Context, n int, dst *os.File, r io.Reader) (int64, error) {
		if n == 2 {
			f, err := os.OpenFile(src, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = f.Write([]byte("more"))
				err = errors.Join(err, f.Close())
			}
			if err != nil {
				return 0, err // the test then fails: Stage did not see the change
			}
		}
		return dst.ReadFrom(r)
	})
	if _, err := c.Stage(context.Background(), src, jid("1"), nil); err == nil || !strings.Contains(err.Error(), "changed while it was copied") {
		t.Fatalf("Stage = %v", err)
	}
	assertClean(t, c)
}

func TestTimeout(t *testing.T) {
	c := open(t, func(o *Options) { o.StageTimeout = 150 * time.Millisecond })
	src := image(t, t.TempDir(), "slow.sif", 1<<20)
	withCopy(c, func(ctx context.Context, n int, dst *os.File, r io.Reader) (int64, error) {
		<-ctx.Done() // the copy is slower than the stage timeout: it ends first
		return dst.ReadFrom(r)
	})
	r, err := c.Stage(context.Background(), src, jid("1"), nil)
	if !errors.Is(err, ErrTimeout) || r.Path != src {
		t.Fatalf("Stage = %+v, %v; want ErrTimeout and the source", r, err)
	}
	if m, _ := filepath.Glob(filepath.Join(c.Dir(), "*.sif")); len(m) != 0 {
		t.Errorf("a cut-off copy was published: %v", m)
	}
}

// cutOff stages src with a copy that stops (its context ends) after `steps`
// steps of 64 KiB, and returns the cut-off copy it left.
func cutOff(t *testing.T, c *Cache, src string, steps int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	withCopy(c, func(_ context.Context, n int, dst *os.File, r io.Reader) (int64, error) {
		if n == steps {
			cancel()
		}
		return dst.ReadFrom(r)
	})
	if _, err := c.Stage(ctx, src, jid("1"), nil); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "resumes it") {
		t.Fatalf("Stage = %v; want ErrTimeout, the copy kept", err)
	}
	parts, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*-part*"))
	all, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*"))
	if len(parts) != 1 || len(all) != 1 {
		t.Fatalf("after a cut-off copy the cache holds %v; want one cut-off copy", all)
	}
	return parts[0]
}

// TestResume: a copy cut off by its deadline is kept, synced, under a name
// that says which file it is a copy of; the next Stage of the same image
// copies only the rest, then checks the whole as always (sha256 too).
func TestResume(t *testing.T) {
	for _, verify := range []string{"size", "sha256"} {
		t.Run(verify, func(t *testing.T) {
			c := open(t, func(o *Options) { o.Verify = verify })
			src := image(t, t.TempDir(), "big.sif", 1<<20)
			part := cutOff(t, c, src, 3)
			have := fileSize(part)
			if have != 3*64<<10 {
				t.Errorf("the cut-off copy holds %d bytes, want the 3 steps copied (%d)", have, 3*64<<10)
			}
			var copied int64
			withCopy(c, func(_ context.Context, _ int, dst *os.File, r io.Reader) (int64, error) {
				n, err := dst.ReadFrom(r)
				copied += n
				return n, err
			})
			r, err := c.Stage(context.Background(), src, jid("2"), nil)
			testkit.Must(t, err)
			want := testkit.ReadFile(t, src)
			if r.Resumed != have || copied != int64(len(want))-have || !r.Copied {
				t.Errorf("resumed %d, copied %d now; want %d resumed and the other %d bytes copied", r.Resumed, copied, have, int64(len(want))-have)
			}
			if got := testkit.ReadFile(t, r.Path); !bytes.Equal(got, want) {
				t.Error("the resumed entry differs from the image")
			}
			if m, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*")); len(m) != 0 {
				t.Errorf("left after the resumed copy: %v", m)
			}
			if verify == "sha256" {
				e, err := c.Entries()
				testkit.Must(t, err)
				if sum := sha256.Sum256(want); len(e) != 1 || e[0].SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("the resumed entry's recorded sha256 is not the image's: %+v", e)
				}
			}
		})
	}
}

// TestResumeRefusesAnotherFile: a cut-off copy is resumed only for the file
// it was copied from as it was then. A source rewritten in place with its
// size and mtime put back (as `touch -r` does) has a new ctime, so a new
// key: the copy starts afresh.
func TestResumeRefusesAnotherFile(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "big.sif", 1<<20)
	cutOff(t, c, src, 2)
	st, err := os.Stat(src)
	testkit.Must(t, err)
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	testkit.Must(t, err)
	_, err = f.WriteAt([]byte("rewritten"), 200<<10)
	testkit.Must(t, errors.Join(err, f.Close()))
	testkit.Must(t, os.Chtimes(src, st.ModTime(), st.ModTime()))
	withCopy(c, func(_ context.Context, _ int, dst *os.File, r io.Reader) (int64, error) { return dst.ReadFrom(r) })
	r, err := c.Stage(context.Background(), src, jid("2"), nil)
	testkit.Must(t, err)
	if r.Resumed != 0 {
		t.Errorf("resumed %d bytes of a copy of the file as it was before", r.Resumed)
	}
	if !bytes.Equal(testkit.ReadFile(t, r.Path), testkit.ReadFile(t, src)) {
		t.Error("the entry is not the rewritten image")
	}
	// The rewritten image has another key: the copy of the old one is gc's
	// (past PartialKeep), like any cut-off copy nobody resumes.
	_, err = c.GC(GCOptions{Now: time.Now().Add(PartialKeep + time.Minute)})
	testkit.Must(t, err)
	if m, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*")); len(m) != 0 {
		t.Errorf("left: %v", m)
	}
}

// TestGCKeepsFreshPartials: gc leaves a cut-off copy for PartialKeep, then
// removes it; gc --all removes it at once.
func TestGCKeepsFreshPartials(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "big.sif", 1<<20)
	part := cutOff(t, c, src, 2)
	now := time.Now()
	for _, tc := range []struct {
		name string
		o    GCOptions
		gone bool
	}{
		{"fresh", GCOptions{Now: now}, false},
		{"fresh, dry run of --all", GCOptions{Now: now, All: true, DryRun: true}, false},
		{"past PartialKeep", GCOptions{Now: now.Add(PartialKeep + time.Minute)}, true},
	} {
		r, err := c.GC(tc.o)
		testkit.Must(t, err)
		if _, err := os.Stat(part); (err != nil) != tc.gone || (len(r.Temps) == 1) != (tc.gone || tc.o.DryRun) {
			t.Errorf("%s: gc reported %v, the cut-off copy is there: %v; want gone: %v", tc.name, r.Temps, err == nil, tc.gone)
		}
	}
	cutOff(t, c, src, 2)
	_, err := c.GC(GCOptions{Now: now, All: true})
	testkit.Must(t, err)
	assertClean(t, c)
}

// TestStepsSizedByTime: on a source that gives 8 MiB/s, no copy step asks
// for more than twice what stepTarget moves, so a copy notices its deadline
// within about a step; on a fast one the steps grow to the largest.
func TestStepsSizedByTime(t *testing.T) {
	const rate = 8 << 20 // bytes a second
	c := open(t, nil)
	src := image(t, t.TempDir(), "big.sif", 6<<20)
	var steps []int64
	c.seams.copyChunk = func(_ context.Context, dst *os.File, r io.Reader) (int64, error) {
		lr := r.(*io.LimitedReader)
		steps = append(steps, lr.N)
		time.Sleep(time.Duration(float64(lr.N) / rate * float64(time.Second)))
		return dst.ReadFrom(r)
	}
	_, err := c.Stage(context.Background(), src, jid("1"), nil)
	testkit.Must(t, err)
	for i, n := range steps {
		if n > 2*int64(stepTarget.Seconds()*rate) {
			t.Errorf("step %d asked for %d bytes: %v at the source's rate", i, n, time.Duration(float64(n)/rate*float64(time.Second)))
		}
	}
	for _, tc := range []struct {
		last, n int64
		took    time.Duration
		want    int64
	}{
		{4 << 20, 4 << 20, time.Millisecond, 8 << 20},     // fast: at most doubles
		{512 << 20, 512 << 20, time.Millisecond, maxStep}, // up to the largest
		{4 << 20, 4 << 20, 4 * time.Second, minStep},      // 1 MiB/s: a quarter, at least minStep
		{64 << 20, 64 << 20, time.Second, 16 << 20},       // 64 MiB/s: 16 MiB in 250 ms
		{4 << 20, 1 << 20, 0, 8 << 20},                    // no time measured: doubles
	} {
		if got := nextStep(tc.last, tc.n, tc.took, maxStep); got != tc.want {
			t.Errorf("nextStep(%d, %d, %v) = %d, want %d", tc.last, tc.n, tc.took, got, tc.want)
		}
	}
}

func TestWaitsForAnotherStager(t *testing.T) {
	c := open(t, func(o *Options) { o.StageTimeout = 200 * time.Millisecond })
	src := image(t, t.TempDir(), "x.sif", 8192)
	s, _ := openSource(src)
	s.f.Close()
	held := flock.New(c.lockPath(s.key()))
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatal("could not take the lock", err)
	}
	_, err := c.Stage(context.Background(), src, jid("1"), nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "another stager") {
		t.Errorf("Stage while another holds the lock = %v", err)
	}
	testkit.Must(t, held.Unlock())
	if r, err := c.Stage(context.Background(), src, jid("1"), nil); err != nil || !r.Copied {
		t.Errorf("Stage after the lock is free = %+v, %v", r, err)
	}
}

func TestSHA256(t *testing.T) {
	c := open(t, func(o *Options) { o.Verify = "sha256" })
	src := image(t, t.TempDir(), "x.sif", 200<<10)
	r, err := c.Stage(context.Background(), src, jid("1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	es, _ := c.Entries()
	if len(es[0].SHA256) != 64 {
		t.Fatalf("no digest recorded: %+v", es[0])
	}
	if checks, _ := c.Verify(); len(checks) != 1 || !checks[0].OK {
		t.Errorf("Verify of a good entry = %+v", checks)
	}
	testkit.Must(t, os.Chmod(r.Path, 0o600))
	f, err := os.OpenFile(r.Path, os.O_WRONLY, 0)
	testkit.Must(t, err)
	_, err = f.WriteAt([]byte("flip"), 100<<10)
	testkit.Must(t, errors.Join(err, f.Close()))
	checks, _ := c.Verify()
	if checks[0].OK || !strings.Contains(checks[0].Problem, "sha256") {
		t.Errorf("Verify of a damaged entry = %+v", checks)
	}
}

// fakeDisk makes c's filesystem look total bytes big with free bytes free.
func fakeDisk(c *Cache, total, free uint64) {
	c.seams.diskUsage = func(string) (*disk.UsageStat, error) { return &disk.UsageStat{Total: total, Free: free}, nil }
}

func size(s string) config.Size { v, _ := config.ParseSize(s); return v }

func TestQuotaAndEviction(t *testing.T) {
	c := open(t, func(o *Options) { o.Quota = size("500KiB"); o.Reserve = size("1MiB") })
	fakeDisk(c, 100<<20, 50<<20)
	dir := t.TempDir()
	a, b, big := image(t, dir, "a.sif", 300<<10), image(t, dir, "b.sif", 300<<10), image(t, dir, "big.sif", 800<<10)

	ra, err := c.Stage(context.Background(), a, jid("1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(context.Background(), b, jid("1"), nil); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("b over quota while a is referenced = %v, want ErrNoSpace naming the quota", err)
	}
	testkit.Must(t, c.Release(jid("1")))
	rb, err := c.Stage(context.Background(), b, jid("2"), nil)
	if err != nil {
		t.Fatalf("b after a was released = %v", err)
	}
	if _, err := os.Stat(ra.Path); !os.IsNotExist(err) {
		t.Error("a was not evicted to make room for b")
	}
	if _, err := c.Stage(context.Background(), big, jid("3"), nil); !errors.Is(err, ErrNoSpace) {
		t.Errorf("an image larger than the quota = %v", err)
	}
	if _, err := os.Stat(rb.Path); err != nil {
		t.Error("a referenced entry was evicted")
	}
	assertNoTemps(t, c)
}

func TestReserve(t *testing.T) {
	c := open(t, func(o *Options) { o.Quota = size("50%"); o.Reserve = size("2GiB") })
	fakeDisk(c, 100<<30, 2<<30+100<<10)
	src := image(t, t.TempDir(), "x.sif", 300<<10)
	_, err := c.Stage(context.Background(), src, jid("1"), nil)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "reserve") {
		t.Errorf("Stage into the reserve = %v", err)
	}
	assertClean(t, c)
}

func assertNoTemps(t *testing.T, c *Cache) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestGC(t *testing.T) {
	c := open(t, func(o *Options) { o.KeepWarm = time.Hour })
	dir := t.TempDir()
	old, fresh, used := image(t, dir, "old.sif", 4096), image(t, dir, "fresh.sif", 4096), image(t, dir, "used.sif", 4096)
	ro, err := c.Stage(context.Background(), old, slurm.JobID{}, nil)
	testkit.Must(t, err)
	_, err = c.Stage(context.Background(), fresh, slurm.JobID{}, nil)
	testkit.Must(t, err)
	_, err = c.Stage(context.Background(), used, jid("77"), nil)
	testkit.Must(t, err)
	past := time.Now().Add(-2 * time.Hour)
	testkit.Must(t, os.Chtimes(c.metaPath(ro.Key), past, past))

	// A copy left by a dead stager (lock free), one in progress (lock held),
	// and metadata whose entry is gone.
	testkit.Must(t, os.WriteFile(filepath.Join(c.Dir(), ".tmp-dead-0123456789abcdef-1"), []byte("x"), 0o600))
	busy := flock.New(c.lockPath("busy-0123456789abcdef"))
	if ok, err := busy.TryLock(); !ok || err != nil {
		t.Fatalf("locking the busy entry: %v", err)
	}
	defer func() { testkit.Must(t, busy.Unlock()) }()
	testkit.Must(t, os.WriteFile(filepath.Join(c.Dir(), ".tmp-busy-0123456789abcdef-2"), []byte("x"), 0o600))
	testkit.Must(t, os.WriteFile(c.metaPath("orphan-0123456789abcdef"), []byte("{}"), 0o600))

	dry, err := c.GC(GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Entries) != 1 || len(dry.Temps) != 1 || len(dry.Orphans) != 1 {
		t.Errorf("dry run = %+v", dry)
	}
	if es, _ := c.Entries(); len(es) != 3 {
		t.Fatal("a dry run removed entries")
	}
	r, err := c.GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Entries, []string{ro.Key}) || !slices.Equal(r.Temps, []string{".tmp-dead-0123456789abcdef-1"}) || !slices.Equal(r.Orphans, []string{"orphan-0123456789abcdef"}) {
		t.Errorf("gc = %+v", r)
	}
	r, _ = c.GC(GCOptions{All: true, Jobs: []slurm.JobID{jid("77")}})
	if len(r.Entries) != 2 || !slices.Equal(r.Jobs, []slurm.JobID{jid("77")}) {
		t.Errorf("gc --all --job 77 = %+v, want fresh and used removed", r)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), ".tmp-busy-0123456789abcdef-2")); err != nil {
		t.Error("gc removed a copy whose stager holds the lock")
	}
}

func TestJobIDs(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "x.sif", 4096)
	for _, bad := range []string{"../x", "a/b", "..", ".hidden", "x y", "12345.batch", "interactive-1", "c1"} {
		if _, err := slurm.ParseJobID(bad); err == nil {
			t.Errorf("job %q accepted", bad)
		}
	}
	if err := c.Release(slurm.JobID{}); err == nil {
		t.Error("Release of no job accepted")
	}
	if _, err := c.Stage(context.Background(), src, jid("12345"), nil); err != nil {
		t.Errorf("Slurm job id refused: %v", err)
	}
}

// jid is a job id the test knows to be valid.
func jid(s string) slurm.JobID {
	j, err := slurm.ParseJobID(s)
	if err != nil {
		panic(err)
	}
	return j
}

func TestUnsafeRoots(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	testkit.Must(t, os.Mkdir(real, 0o755))
	link := filepath.Join(base, "link")
	testkit.Must(t, os.Symlink(real, link))
	loose := filepath.Join(base, "loose")
	testkit.Must(t, os.Mkdir(loose, 0o777))
	testkit.Must(t, os.Chmod(loose, 0o777))
	cases := map[string]string{link: "symbolic link", loose: "mode"}
	for root, want := range cases {
		_, err := Open(Options{Root: root, UID: os.Getuid(), GID: os.Getgid(), FallbackDir: base, Log: quietLog()})
		if !errors.Is(err, ErrUnsafeRoot) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want ErrUnsafeRoot (%s)", root, err, want)
		}
	}
}

// TestRootOwnedByAnotherUser: a cache root someone else created is refused,
// whether root or the user opens it.
func TestRootOwnedByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.Skip(t, "making a directory owned by another user needs root")
	}
	base := testkit.SharedDir(t)
	root := filepath.Join(base, "cache")
	testkit.Must(t, os.Mkdir(root, 0o755))
	testkit.Must(t, os.Chown(root, 65534, 65534))
	_, err := Open(Options{Root: root, FallbackDir: base, Log: quietLog()})
	if !errors.Is(err, ErrUnsafeRoot) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("root opening a root owned by nobody = %v", err)
	}
	out, err := testkit.RunAs(t, 1234, 1234, []string{"SIFKERNEL_CACHE_HELPER=open", "SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_FALLBACK=/tmp"}, "-test.run=^$")
	if err == nil || !strings.Contains(string(out), "owned by uid 65534") {
		t.Errorf("a user opening a root owned by another = %v\n%s", err, out)
	}
}

// TestUserFallback: a user with no root-made cache gets one of its own,
// private, under the fallback directory; a user cannot open another's.
func TestUserFallback(t *testing.T) {
	base := testkit.SharedDir(t)
	testkit.Must(t, os.Chmod(base, 0o1777)) // like /tmp
	env := []string{"SIFKERNEL_CACHE_HELPER=open", "SIFKERNEL_CACHE_ROOT=" + filepath.Join(base, "absent"), "SIFKERNEL_CACHE_FALLBACK=" + base}
	out, err := testkit.RunAs(t, 1234, 1234, env, "-test.run=^$")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := filepath.Join(base, "sifkernel-1234", "users", "1234")
	if !strings.Contains(string(out), "DIR "+want) {
		t.Errorf("user cache not at %s:\n%s", want, out)
	}
	st, _ := os.Stat(filepath.Join(base, "sifkernel-1234"))
	if st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Errorf("fallback root mode %v owner %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
	}
	if _, err := os.Stat(filepath.Join(base, "absent")); !os.IsNotExist(err) {
		t.Error("a user created the configured cache root")
	}
	// Another user squatting the fallback name is refused.
	out, err = testkit.RunAs(t, 1235, 1235, []string{"SIFKERNEL_CACHE_HELPER=open", "SIFKERNEL_CACHE_ROOT=" + filepath.Join(base, "absent"), "SIFKERNEL_CACHE_FALLBACK=" + base, "SIFKERNEL_CACHE_UID=1234"}, "-test.run=^$")
	if err == nil {
		t.Errorf("uid 1235 opened uid 1234's cache:\n%s", out)
	}
}

// TestRootMadeUserDir: root creates users/<uid> for a user (as a Prolog
// will), and the user then stages into it.
func TestRootMadeUserDir(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.Skip(t, "creating another user's cache directory needs root")
	}
	base := testkit.SharedDir(t)
	root := filepath.Join(base, "cache")
	c, err := Open(Options{Root: root, UID: 1234, GID: 1234, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(c.Dir())
	if st.Sys().(*syscall.Stat_t).Uid != 1234 || st.Mode().Perm() != 0o700 {
		t.Fatalf("user dir owner %d mode %v", st.Sys().(*syscall.Stat_t).Uid, st.Mode().Perm())
	}
	if rs, _ := os.Stat(root); rs.Mode().Perm() != 0o755 || rs.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("cache root mode %v owner %d, want 0755 root", rs.Mode().Perm(), rs.Sys().(*syscall.Stat_t).Uid)
	}
	src := image(t, base, "img.sif", 8192)
	testkit.Must(t, os.Chmod(src, 0o644))
	out, err := testkit.RunAs(t, 1234, 1234, []string{"SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_IMAGE=" + src}, "-test.run=^$")
	if err != nil || !strings.Contains(string(out), c.Dir()) {
		t.Errorf("user staging into the root-made dir: %v\n%s", err, out)
	}
}

// TestMain lets the test binary act as a stager process (helper process pattern).
func TestMain(m *testing.M) {
	if h := os.Getenv("SIFKERNEL_CACHE_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	o := Options{Root: os.Getenv("SIFKERNEL_CACHE_ROOT"), FallbackDir: os.Getenv("SIFKERNEL_CACHE_FALLBACK"), StageTimeout: time.Minute, Log: quietLog(),
		Site: os.Getenv("SIFKERNEL_CACHE_SITE") == "1"}
	if u := os.Getenv("SIFKERNEL_CACHE_UID"); u != "" {
		if _, err := fmt.Sscan(u, &o.UID); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		o.GID = o.UID
	}
	c, err := Open(o)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Println("DIR", c.Dir())
	if mode == "gc" {
		r, err := c.GC(GCOptions{})
		if err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		fmt.Println("TEMPS", len(r.Temps))
		return 0
	}
	if mode != "stage" {
		return 0
	}
	if gate := os.Getenv("SIFKERNEL_CACHE_GATE"); gate != "" {
		// The copy stops after its first chunk until the gate file exists:
		// the parent kills this stager there, or opens the gate once every
		// stager is up.
		c.seams.chunk = 256 << 10
		c.seams.copyChunk = func(_ context.Context, dst *os.File, src io.Reader) (int64, error) {
			n, err := dst.ReadFrom(src)
			fmt.Println("COPYING")
			for {
				if _, serr := os.Stat(gate); serr == nil {
					return n, err
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	var job slurm.JobID
	if s := os.Getenv("SIFKERNEL_CACHE_JOB"); s != "" {
		if job, err = slurm.ParseJobID(s); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
	}
	r, err := c.Stage(context.Background(), os.Getenv("SIFKERNEL_CACHE_IMAGE"), job, nil)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	b, _ := json.Marshal(r)
	fmt.Println("RESULT", string(b))
	return 0
}

func TestAdopt(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "x.sif", 100<<10)
	data := testkit.ReadFile(t, src)
	cp := filepath.Join(c.Dir(), "incoming.sif")
	testkit.Must(t, os.WriteFile(cp, data, 0o600))
	r, err := c.Adopt(context.Background(), src, cp, jid("5"))
	if err != nil || !r.Copied || !r.Staged {
		t.Fatalf("Adopt = %+v, %v", r, err)
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Error("the adopted copy is still at its old name")
	}
	testkit.Must(t, os.WriteFile(cp, data, 0o600))
	if r2, err := c.Adopt(context.Background(), src, cp, jid("6")); err != nil || r2.Copied || r2.Path != r.Path {
		t.Errorf("second Adopt = %+v, %v; want the existing entry", r2, err)
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Error("a redundant copy was left")
	}
	other := image(t, t.TempDir(), "y.sif", 100<<10)
	bad := testkit.ReadFile(t, other)
	testkit.Must(t, os.WriteFile(cp, bad, 0o600))
	if _, err := c.Adopt(context.Background(), other, cp, jid("7")); err != nil {
		t.Fatal(err)
	}
	testkit.Must(t, os.WriteFile(cp, data[:len(data)/2], 0o600))
	src2 := image(t, t.TempDir(), "z.sif", 100<<10)
	if _, err := c.Adopt(context.Background(), src2, cp, jid("8")); err == nil {
		t.Error("adopted a truncated copy of another image")
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Error("a rejected copy was left")
	}
}

// TestNothingAccumulates: three rounds of 40 images staged and then
// evicted leave no more files than entries: every lock file goes with its
// entry (tryLocked keeps a stager that opened a removed lock file from
// holding a lock on nothing).
func TestNothingAccumulates(t *testing.T) {
	c := open(t, nil)
	src := t.TempDir()
	for round := range 3 {
		for i := range 40 {
			img := image(t, src, fmt.Sprintf("r%d-%d.sif", round, i), 4096)
			_, err := c.Stage(context.Background(), img, jid("1"), nil)
			testkit.Must(t, err)
		}
		testkit.Must(t, c.Release(jid("1")))
		if round < 2 {
			_, err := c.GC(GCOptions{All: true})
			testkit.Must(t, err)
		}
	}
	entries, err := c.Entries()
	testkit.Must(t, err)
	count := func(pat string) int { m, _ := filepath.Glob(filepath.Join(c.Dir(), pat)); return len(m) }
	if len(entries) != 40 || count("*.sif") != 40 || count("*.json") != 40 || count("*.lock") != 40 || count(".tmp-*") != 0 {
		t.Errorf("after 3 rounds of 40: %d entries, %d .sif, %d .json, %d .lock, %d temps; want 40 of each file an entry has and nothing else",
			len(entries), count("*.sif"), count("*.json"), count("*.lock"), count(".tmp-*"))
	}
}

// TestLockFileReplaced: a lock taken on a lock file that was removed (and
// made anew) meanwhile is taken again on the file the path names now.
func TestLockFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.lock")
	a := NewLock(path)
	defer a.Close()
	testkit.Must(t, os.WriteFile(path, nil, 0o600))
	calls := 0
	ok, err := tryLocked(a, func() (bool, error) {
		calls++
		ok, err := a.TryLock()
		if calls == 1 { // another stager removes the file, a third makes it anew
			testkit.Must(t, os.Remove(path))
			testkit.Must(t, os.WriteFile(path, nil, 0o600))
		}
		return ok, err
	})
	if !ok || err != nil || calls != 2 {
		t.Fatalf("tryLocked = %v, %v after %d tries; want the lock, taken again once", ok, err, calls)
	}
	held, err := a.Stat()
	testkit.Must(t, err)
	now, err := os.Stat(path)
	testkit.Must(t, err)
	if !os.SameFile(held, now) {
		t.Error("the lock held is not on the file the path names")
	}
}
