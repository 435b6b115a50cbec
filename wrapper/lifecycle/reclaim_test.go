package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// reclaimNode is siteNode on a 16 MiB tmpfs with low_water 12 MiB, where
// alice and bob each have a private 1 MiB image besides the site's.
func reclaimNode(t *testing.T, extra string) *site {
	t.Helper()
	s := siteNode(t)
	testkit.Must(t, os.MkdirAll(s.cacheDir, 0o755))
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", s.cacheDir).Run(); err != nil {
		testkit.Skip(t, "mounting a tmpfs needs CAP_SYS_ADMIN: "+err.Error())
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", s.cacheDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", s.cacheDir, err, out)
		}
	})
	s.cfgText = strings.Replace(s.cfgText, "low_water = \"0B\"\n", "", 1)
	s.setConfig(t, "low_water = \"12MiB\"\n"+extra)
	for _, u := range []struct {
		uid  int
		home string
	}{{uid, s.home}, {bobUID, s.others[bobUID].Home}} {
		img := filepath.Join(u.home, "priv.sif")
		testkit.Must(t, sifimage.Build(img, bytes.NewReader(make([]byte, 1<<20))))
		testkit.Must(t, os.Chown(img, u.uid, u.uid))
		testkit.Must(t, os.Chmod(img, 0o600))
		dir := filepath.Join(u.home, ".local/share/jupyter/kernels/priv")
		testkit.Must(t, os.MkdirAll(dir, 0o755))
		kj := strings.Replace(string(testkit.ReadFile(t, filepath.Join(s.kernels, "bert/kernel.json"))), s.image, img, 1)
		testkit.Must(t, os.WriteFile(filepath.Join(dir, "kernel.json"), []byte(kj), 0o644))
		for _, p := range []string{dir, filepath.Dir(dir)} {
			testkit.Must(t, os.Lchown(p, u.uid, u.uid))
		}
		testkit.Must(t, os.Lchown(filepath.Join(dir, "kernel.json"), u.uid, u.uid))
	}
	return s
}

// job runs a Prolog and an Epilog for job of u, then dates the cached
// images the job's kernels used as last used at.
func (s *site) job(t *testing.T, job string, u int, at time.Time) {
	t.Helper()
	s.as(job, u)
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	var used []string
	for _, k := range []string{"bert", "priv"} {
		for _, a := range s.overlay(t, job, k).Argv {
			if strings.HasPrefix(a, s.cacheDir) && strings.HasSuffix(a, ".sif") {
				used = append(used, a)
			}
		}
	}
	if len(used) != 2 {
		t.Fatalf("job %s's kernels use %v, want two cached images\n%s", job, used, s.log.String())
	}
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
	for _, p := range used {
		testkit.Must(t, os.Chtimes(strings.TrimSuffix(p, ".sif")+".json", at, at))
	}
}

func entriesOf(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sif"))
	testkit.Must(t, err)
	return m
}

func freeOn(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	testkit.Must(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// fill writes root's file so that leave bytes stay free, as a job's own
// files would.
func fill(t *testing.T, dir string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".job-files"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	testkit.Must(t, err)
	defer f.Close()
	if n := freeOn(t, dir) - leave; n > 0 {
		_, err = f.Write(make([]byte, n))
		testkit.Must(t, err)
	}
}

// TestReclaimOldestFirst: the entries of ended jobs stay (keep_warm's
// default is hours); when a job's own files take the cache file system
// below cache.low_water, the next hook, any hook, evicts idle entries,
// least recently used first across users and the site, until the mark is
// met, and no more. Entries a running job uses are never evicted; a round
// that cannot meet the mark says so and counts it.
func TestReclaimOldestFirst(t *testing.T) {
	s := reclaimNode(t, "")
	now := time.Now()
	s.job(t, "5001", uid, now.Add(-3*time.Hour)) // alice: her priv.sif and the site's bert
	alice := entriesOf(t, filepath.Join(s.cacheDir, "users", strconv.Itoa(uid)))
	site := entriesOf(t, filepath.Join(s.cacheDir, "site"))
	s.job(t, "5002", bobUID, now.Add(-time.Hour)) // bob: his priv.sif, bert again (the site's, newer now)
	bob := entriesOf(t, filepath.Join(s.cacheDir, "users", strconv.Itoa(bobUID)))
	if len(alice) != 1 || len(bob) != 1 || len(site) != 1 {
		t.Fatalf("after two jobs: alice %v, bob %v, site %v; want one each, kept idle\n%s", alice, bob, site, s.log.String())
	}
	// Alice's is the oldest: a job's files leave 11 MiB free, 1 MiB short.
	fill(t, s.cacheDir, 11<<20)
	s.log.Reset()
	s.as("5003", bobUID) // any hook: an Epilog of a job that made nothing here
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
	if _, err := os.Stat(alice[0]); err == nil {
		t.Errorf("alice's entry, the least recently used, survived\n%s", s.log.String())
	}
	for _, p := range append(bob, site...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s went too: only what the mark needed should go\n%s", p, s.log.String())
		}
	}
	if free := freeOn(t, s.cacheDir); free < 12<<20 {
		t.Errorf("free %d after the round, want at least low_water (12 MiB)", free)
	}
	if !strings.Contains(s.log.String(), "reclaim:") {
		t.Errorf("the Epilog did not say what it reclaimed:\n%s", s.log.String())
	}

	// Bob's next job runs (pins his entry and the site's); the disk gets
	// shorter than every idle entry could give back.
	s.as("5004", bobUID)
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	fill(t, s.cacheDir, 4<<20)
	before, _ := metrics.Read(s.metricsDir())
	s.log.Reset()
	s.as("5005", uid)
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
	for _, p := range append(bob, site...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, in use by job 5004, was evicted\n%s", p, s.log.String())
		}
	}
	after, _ := metrics.Read(s.metricsDir())
	if after.HookFailures["epilog"]["reclaim"] != before.HookFailures["epilog"]["reclaim"]+1 {
		t.Errorf("a round that fell short was not counted: %v -> %v\n%s", before.HookFailures, after.HookFailures, s.log.String())
	}
}

// TestReclaimTotalQuota: sweep holds every user's entries and the site's
// together to cache.total_quota, oldest first, though the disk has room.
func TestReclaimTotalQuota(t *testing.T) {
	s := reclaimNode(t, "")
	now := time.Now()
	s.job(t, "5101", uid, now.Add(-3*time.Hour))
	s.job(t, "5102", bobUID, now.Add(-time.Hour))
	alice := entriesOf(t, filepath.Join(s.cacheDir, "users", strconv.Itoa(uid)))
	bob := entriesOf(t, filepath.Join(s.cacheDir, "users", strconv.Itoa(bobUID)))
	site := entriesOf(t, filepath.Join(s.cacheDir, "site"))
	if len(alice) != 1 || len(bob) != 1 || len(site) != 1 {
		t.Fatalf("alice %v, bob %v, site %v", alice, bob, site)
	}
	// A quota half an entry below what the three hold: alice's, the
	// oldest, goes, and that is enough.
	total := fileSizeOf(t, alice[0]) + fileSizeOf(t, bob[0]) + fileSizeOf(t, site[0])
	quota := total - fileSizeOf(t, alice[0])/2
	squeue := filepath.Join(s.base, "squeue")
	testkit.Must(t, os.WriteFile(squeue, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	s.setConfig(t, fmt.Sprintf("low_water = \"0B\"\ntotal_quota = \"%dB\"\n[slurm]\nsqueue = %q\n", quota, squeue))
	s.log.Reset()
	if _, err := s.lc(t).Sweep(context.Background(), SweepOptions{Node: "c001"}); err != nil {
		t.Fatalf("sweep: %v\n%s", err, s.log.String())
	}
	if _, err := os.Stat(alice[0]); err == nil {
		t.Errorf("alice's entry, the oldest, kept the total over total_quota\n%s", s.log.String())
	}
	if _, err := os.Stat(bob[0]); err != nil {
		t.Errorf("bob's entry went too, though the quota was met without it\n%s", s.log.String())
	}
}

// TestReclaimShares: the least recently used idle entries across owners,
// until the need is covered; each owner asked for its own share only.
func TestReclaimShares(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	owners := []owner{
		{rep: ReclaimReport{Idle: []cache.Idle{{LastUsed: at(1), Size: 10}, {LastUsed: at(5), Size: 10}}}},
		{rep: ReclaimReport{Idle: []cache.Idle{{LastUsed: at(2), Size: 30}, {LastUsed: at(3), Size: 30}}}},
		{site: true, rep: ReclaimReport{Idle: []cache.Idle{{LastUsed: at(4), Size: 100}}}},
	}
	got := reclaimShares(owners, 40) // at(1) 10 + at(2) 30
	want := []share{{at(1).Add(time.Nanosecond), 10}, {at(2).Add(time.Nanosecond), 30}, {}}
	if !slices.Equal(got, want) {
		t.Errorf("shares for 40 bytes = %v, want %v", got, want)
	}
	got = reclaimShares(owners, 71) // through at(4): the site's too
	if got[2].bytes != 100 || got[0].bytes != 10 || got[1].bytes != 60 {
		t.Errorf("shares for 71 bytes = %v", got)
	}
	if got := reclaimShares(owners, 0); got[0].bytes+got[1].bytes+got[2].bytes != 0 {
		t.Errorf("nothing needed, yet shares %v", got)
	}
}
