package cache

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// siteRoot is a cache root with site/ made for nobody, as the Prolog makes it.
func siteRoot(t *testing.T) (root string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "the site cache is made by root for another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		testkit.Skip(t, "no user nobody to stage as")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	root = filepath.Join(testkit.SharedDir(t), "cache")
	tree, err := OpenTree(root, true)
	testkit.Must(t, err)
	defer tree.Close()
	testkit.Must(t, tree.EnsureSite(uid, gid))
	return root, uid, gid
}

// publicImage is an image of size bytes every user may read, in apps/
// beside the cache root.
func publicImage(t *testing.T, root, name string, size int) (dir, path string) {
	t.Helper()
	dir = filepath.Join(filepath.Dir(root), "apps")
	testkit.Must(t, os.MkdirAll(dir, 0o755))
	path = image(t, dir, name, size)
	testkit.Must(t, os.Chmod(path, 0o644))
	return dir, path
}

// TestSiteConcurrentStagers: eight site stagers (as nobody) of one public
// image at once make one copy, 0444, that a reader finds; a private image
// is refused; root's refs pin it and release it.
func TestSiteConcurrentStagers(t *testing.T) {
	root, uid, gid := siteRoot(t)
	dir, src := publicImage(t, root, "torch.sif", 2<<20)
	private := image(t, dir, "mine.sif", 4096)
	testkit.Must(t, os.Chmod(private, 0o600))
	bin := testkit.UserBinary(t)
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := testkit.AsUser(t, bin, uid, gid, []string{"SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_SITE=1",
				"SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_IMAGE=" + src}, "-test.run=^$").CombinedOutput()
			_, line, ok := strings.Cut(string(out), "RESULT ")
			if err != nil || !ok {
				t.Errorf("site stager %d: %v\n%s", i, err, out)
				return
			}
			if err := json.Unmarshal([]byte(line), &results[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	copies := 0
	for _, r := range results {
		if r.Copied {
			copies++
		}
	}
	entries, _ := filepath.Glob(filepath.Join(root, "site", "*.sif"))
	if copies != 1 || len(entries) != 1 {
		t.Fatalf("%d stagers copied, %d entries; want one of each: %+v", copies, len(entries), results)
	}
	st, err := os.Stat(entries[0])
	testkit.Must(t, err)
	if st.Mode().Perm() != 0o444 || int(st.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("site entry %v, uid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
	}
	hit, ok, err := LookupSite(root, uid, src)
	if err != nil || !ok || hit.Path != entries[0] {
		t.Errorf("LookupSite = %+v, %v, %v", hit, ok, err)
	}
	out, err := testkit.RunAs(t, uid, gid, []string{"SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_SITE=1",
		"SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_IMAGE=" + private}, "-test.run=^$")
	if err == nil || !strings.Contains(string(out), "not every user may read it") {
		t.Errorf("a private image staged into the site cache: %v\n%s", err, out)
	}
	tree, err := OpenTree(root, false)
	testkit.Must(t, err)
	defer tree.Close()
	job, _ := slurm.ParseJobID("77")
	testkit.Must(t, tree.AddSiteRef(hit.Key, job, uid))
	if err := tree.AddSiteRef("../../etc", job, uid); err == nil {
		t.Error("a ref for a key that is a path was recorded")
	}
	used, err := tree.ReleaseSiteRefs(job)
	if err != nil || len(used) != 1 || used[0] != hit.Key {
		t.Errorf("ReleaseSiteRefs = %v, %v", used, err)
	}
	if n, b, err := tree.SiteUsage(uid); err != nil || n != 1 || b != st.Size() {
		t.Errorf("SiteUsage = %d, %d, %v", n, b, err)
	}
	// An evictor has moved the entry aside (see evict) when root pins it:
	// root finds it gone after recording the ref, says so and drops the ref.
	aside := filepath.Join(root, "site", ".tmp-"+hit.Key+"-evict")
	testkit.Must(t, os.Rename(entries[0], aside))
	if err := tree.AddSiteRef(hit.Key, job, uid); !errors.Is(err, ErrSiteEntryGone) {
		t.Errorf("AddSiteRef of an entry moved aside = %v, want ErrSiteEntryGone", err)
	}
	if used, _ := tree.ReleaseSiteRefs(job); len(used) != 0 {
		t.Errorf("a ref to an evicted entry stayed: %v", used)
	}
	testkit.Must(t, os.Rename(aside, entries[0]))
}

// TestEvictSeesALateRef: a ref recorded while an evictor has the entry
// moved aside (after its first look for refs) is seen at its second look,
// and the entry is put back; with no ref it goes, lock file and all.
func TestEvictSeesALateRef(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "x.sif", 8192)
	r, err := c.Stage(context.Background(), src, jid("1"), nil)
	testkit.Must(t, err)
	testkit.Must(t, c.Release(jid("1")))
	c.seams.evicting = func(key string) {
		if _, err := os.Lstat(c.entryPath(key)); err == nil {
			t.Error("the entry is still in place while its refs are read the last time")
		}
		// The Epilog's reaping of leftover holders knows the name it has now.
		names, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-*"))
		if len(names) != 1 || !IsEntryName(filepath.Base(names[0])) || IsEntryName(filepath.Base(r.Path)+".partial") {
			t.Errorf("the entry moved aside is %v; IsEntryName does not know it", names)
		}
		testkit.Must(t, c.ref(key, jid("2"))) // root pins it now
	}
	rep, err := c.GC(GCOptions{All: true})
	testkit.Must(t, err)
	if len(rep.Entries) != 0 || !exists(r.Path) {
		t.Fatalf("an entry pinned during its eviction was evicted: %v", rep.Entries)
	}
	c.seams.evicting = nil
	testkit.Must(t, c.Release(jid("2")))
	rep, err = c.GC(GCOptions{All: true})
	testkit.Must(t, err)
	if len(rep.Entries) != 1 || exists(r.Path) || exists(c.lockPath(r.Key)) {
		t.Errorf("gc = %v; the entry and its lock file should be gone", rep.Entries)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestSiteStagerKilledMidCopy: a site stager killed while it copies leaves
// no entry, only its copy in progress, which the site's gc removes; the
// next stager publishes a good entry.
func TestSiteStagerKilledMidCopy(t *testing.T) {
	root, uid, gid := siteRoot(t)
	dir, src := publicImage(t, root, "big.sif", 4<<20)
	bin := testkit.UserBinary(t)
	env := []string{"SIFKERNEL_CACHE_SITE=1", "SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_IMAGE=" + src}
	cmd := testkit.AsUser(t, bin, uid, gid, append(env, "SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_GATE="+filepath.Join(dir, "never")), "-test.run=^$")
	out, err := cmd.StdoutPipe()
	testkit.Must(t, err)
	testkit.Must(t, cmd.Start())
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "COPYING" {
	}
	testkit.Must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait() // killed: its error is the signal
	if m, _ := filepath.Glob(filepath.Join(root, "site", "*.sif")); len(m) != 0 {
		t.Fatalf("a killed site stager published %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "site", ".tmp-*")); len(m) != 1 {
		t.Fatalf("want the killed stager's copy in progress, found %v", m)
	}
	gc, err := testkit.AsUser(t, bin, uid, gid, append(env, "SIFKERNEL_CACHE_HELPER=gc"), "-test.run=^$").CombinedOutput()
	if err != nil || !strings.Contains(string(gc), "TEMPS 1") {
		t.Fatalf("site gc: %v\n%s", err, gc)
	}
	again, err := testkit.AsUser(t, bin, uid, gid, append(env, "SIFKERNEL_CACHE_HELPER=stage"), "-test.run=^$").CombinedOutput()
	if err != nil || !strings.Contains(string(again), `"copied":true`) {
		t.Fatalf("the next site stager: %v\n%s", err, again)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "site", ".tmp-*")); len(m) != 0 {
		t.Errorf("copies in progress left: %v", m)
	}
}

func TestInSiteDirs(t *testing.T) {
	dirs := []string{"/work/apps/containers/", "/opt/sif"}
	for path, want := range map[string]bool{
		"/work/apps/containers/torch.sif": true, "/work/apps/containers/v2/tf.sif": true, "/opt/sif/a.sif": true,
		"/work/apps/containers2/x.sif": false, "/work/apps/x.sif": false, "/opt/sifx/a.sif": false, "/scratch/a.sif": false,
	} {
		if got := InSiteDirs(path, dirs); got != want {
			t.Errorf("InSiteDirs(%s) = %v, want %v", path, got, want)
		}
	}
	if !InSiteDirs("/anywhere/a.sif", nil) {
		t.Error("no site_dirs should mean anywhere")
	}
}

// TestSiteGCDue: root tells, from names and times alone, whether the site
// child's gc would do anything, so that an Epilog starts it only then.
func TestSiteGCDue(t *testing.T) {
	root, uid, gid := siteRoot(t)
	_, src := publicImage(t, root, "torch.sif", 4096)
	out, err := testkit.AsUser(t, testkit.UserBinary(t), uid, gid, []string{"SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_SITE=1",
		"SIFKERNEL_CACHE_ROOT=" + root, "SIFKERNEL_CACHE_IMAGE=" + src}, "-test.run=^$").CombinedOutput()
	if err != nil {
		t.Fatalf("site stager: %v\n%s", err, out)
	}
	tree, err := OpenTree(root, false)
	testkit.Must(t, err)
	defer tree.Close()
	hit, ok, err := LookupSite(root, uid, src)
	if err != nil || !ok {
		t.Fatalf("LookupSite = %v, %v", ok, err)
	}
	now, hour := time.Now(), time.Hour
	due := func(keepWarm time.Duration, at time.Time) bool {
		d, err := tree.SiteGCDue(uid, keepWarm, at)
		testkit.Must(t, err)
		return d
	}
	if due(hour, now) {
		t.Error("a fresh entry makes gc due")
	}
	if !due(hour, now.Add(2*hour)) {
		t.Error("an entry idle past keep_warm does not make gc due")
	}
	job, _ := slurm.ParseJobID("88")
	testkit.Must(t, tree.AddSiteRef(hit.Key, job, uid))
	if due(hour, now.Add(2*hour)) {
		t.Error("an entry a job uses makes gc due")
	}
	_, err = tree.ReleaseSiteRefs(job)
	testkit.Must(t, err)
	part := filepath.Join(root, "site", ".tmp-"+hit.Key+"-part0123456789abcdef")
	testkit.Must(t, os.WriteFile(part, []byte("x"), 0o600))
	if due(hour, now.Add(10*time.Minute)) {
		t.Error("a young cut-off copy makes gc due")
	}
	if !due(PartialKeep+hour, now.Add(PartialKeep+time.Minute)) {
		t.Error("a cut-off copy past PartialKeep does not make gc due")
	}
	testkit.Must(t, os.Remove(part))
	testkit.Must(t, os.WriteFile(filepath.Join(root, "site", "gone-0123456789abcdef.json"), []byte("{}"), 0o600))
	if !due(hour, now) {
		t.Error("metadata without its entry does not make gc due")
	}
}
