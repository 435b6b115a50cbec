package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

const bobUID = 1235

// siteNode is a node with the site cache on (staged as nobody) and two job
// users, alice and bob, whose kernels name one public image.
func siteNode(t *testing.T) *site {
	t.Helper()
	s := newSite(t)
	if _, err := slurm.LookupUserName("nobody"); err != nil {
		testkit.Skip(t, "the site cache tests stage as nobody, which this machine lacks")
	}
	// The site's own image: root's, in root's directories (a user's file,
	// world-readable or not, is never shared).
	testkit.Must(t, os.Chown(s.image, 0, 0))
	testkit.Must(t, os.Chmod(s.image, 0o644))
	s.cfgCache = "site = true\nsite_user = \"nobody\"\n"
	s.setConfig(t, "")
	bobHome := filepath.Join(s.base, "home/bob")
	s.others = map[int]slurm.User{bobUID: {Name: "bob", UID: bobUID, GID: bobUID, Home: bobHome, Groups: []int{bobUID}}}
	dir := filepath.Join(bobHome, ".local/share/jupyter/kernels/bert")
	testkit.Must(t, os.MkdirAll(dir, 0o755))
	kj := testkit.ReadFile(t, filepath.Join(s.kernels, "bert/kernel.json"))
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "kernel.json"), kj, 0o644))
	testkit.Must(t, filepath.WalkDir(bobHome, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, bobUID, bobUID)
	}))
	testkit.Must(t, os.Chmod(bobHome, 0o700))
	return s
}

// as makes the next hook run for job id of uid.
func (s *site) as(job string, uid int) {
	s.env["SLURM_JOB_ID"] = job
	s.env["SLURM_JOB_UID"] = strconv.Itoa(uid)
	s.env["SLURM_JOB_GID"] = strconv.Itoa(uid)
}

// TestSiteCacheTwoUsers: alice's job stages the public image into the site
// cache, as nobody, 0444; bob's job on the node uses that copy and copies
// nothing; both jobs pin it; each Epilog drops its own pin and the image
// stays for site_keep_warm; neither user's own cache holds a copy.
func TestSiteCacheTwoUsers(t *testing.T) {
	s := siteNode(t)
	s.as("4242", uid)
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	a := s.overlay(t, "4242", "bert")
	entries, _ := filepath.Glob(filepath.Join(s.cacheDir, "site/*.sif"))
	if len(entries) != 1 || !slices.Contains(a.Argv, entries[0]) {
		t.Fatalf("alice's kernel %q; site entries %v\n%s", a.Argv, entries, s.log.String())
	}
	entry := entries[0]
	st, err := os.Stat(entry)
	testkit.Must(t, err)
	nobody, _ := slurm.LookupUserName("nobody")
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != nobody.UID || st.Mode().Perm() != 0o444 {
		t.Errorf("site entry uid %d mode %v, want nobody's, 0444", sys.Uid, st.Mode().Perm())
	}
	ino := st.Sys().(*syscall.Stat_t).Ino

	s.as("4343", bobUID)
	before, _ := metrics.Read(s.metricsDir())
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	b := s.overlay(t, "4343", "bert")
	if !slices.Contains(b.Argv, entry) {
		t.Fatalf("bob's kernel %q does not use the site entry %s\n%s", b.Argv, entry, s.log.String())
	}
	if st, err := os.Stat(entry); err != nil || st.Sys().(*syscall.Stat_t).Ino != ino {
		t.Error("bob's job replaced the site entry: it should have used alice's copy")
	}
	after, _ := metrics.Read(s.metricsDir())
	if after.SiteHits != before.SiteHits+1 || after.SiteBytesSaved != before.SiteBytesSaved+uint64(st.Size()) || after.BytesStaged != before.BytesStaged {
		t.Errorf("bob's Prolog counted %+v -> %+v: want one site hit, %d bytes saved, nothing copied", before, after, st.Size())
	}
	for _, u := range []int{uid, bobUID} {
		if m, _ := filepath.Glob(filepath.Join(s.cacheDir, "users", strconv.Itoa(u), "*.sif")); len(m) != 0 {
			t.Errorf("uid %d has its own copy too: %v", u, m)
		}
	}
	key := strings.TrimSuffix(filepath.Base(entry), ".sif")
	refs, _ := filepath.Glob(filepath.Join(s.cacheDir, "site-refs", key, "*"))
	if len(refs) != 2 {
		t.Errorf("site refs %v, want jobs 4242 and 4343", refs)
	}

	s.as("4242", uid)
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
	s.as("4343", bobUID)
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
	if refs, _ := filepath.Glob(filepath.Join(s.cacheDir, "site-refs", key, "*")); len(refs) != 0 {
		t.Errorf("refs left after both Epilogs: %v", refs)
	}
	if _, err := os.Stat(entry); err != nil {
		t.Errorf("the site entry went with its last job, within site_keep_warm: %v", err)
	}
}

// TestSiteCacheTakesOnlyPublicImages: an image only alice may read, and
// one of hers every user may read (0644, in a 0755 directory of hers), are
// staged for alice alone, and the site cache stays empty: only the site's
// own images are shared.
func TestSiteCacheTakesOnlyPublicImages(t *testing.T) {
	s := siteNode(t)
	private := filepath.Join(s.home, "private.sif")
	testkit.Must(t, sifimage.Build(private, bytes.NewReader(sifimage.Minimal)))
	testkit.Must(t, os.Chmod(private, 0o600))
	testkit.Must(t, os.Chown(private, uid, gid))
	s.addKernel(t, "bert", private, "")
	shared := filepath.Join(s.base, "scratch/alice/shared.sif")
	testkit.Must(t, os.MkdirAll(filepath.Dir(shared), 0o755))
	testkit.Must(t, sifimage.Build(shared, bytes.NewReader(sifimage.Minimal)))
	testkit.Must(t, os.Chmod(shared, 0o644))
	testkit.Must(t, os.Chown(shared, uid, gid))
	testkit.Must(t, os.Chown(filepath.Dir(shared), uid, gid))
	s.addKernel(t, "mine", shared, "")
	s.as("4242", uid)
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	if m, _ := filepath.Glob(filepath.Join(s.cacheDir, "site/*.sif")); len(m) != 0 {
		t.Errorf("a user's image went into the site cache: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(s.cacheDir, "users", strconv.Itoa(uid), "*.sif")); len(m) != 2 {
		t.Errorf("alice's images are not staged for her: %v\n%s", m, s.log.String())
	}
	if !strings.Contains(s.log.String(), "not a site image") || !strings.Contains(s.log.String(), "neither root nor one of cache.site_owners") {
		t.Errorf("the Prolog's log does not say why the images are staged for alice alone:\n%s", s.log.String())
	}
}

// TestCacheWarm: root's warm-up stages the public image before any job, and
// the first job copies nothing.
func TestCacheWarm(t *testing.T) {
	s := siteNode(t)
	lc := s.lc(t)
	r, err := lc.Warm(context.Background(), []string{filepath.Dir(s.image)})
	testkit.Must(t, err)
	if len(r.Results) != 1 || !r.Results[0].Staged || !r.Results[0].Copied {
		t.Fatalf("warm = %+v", r)
	}
	s.as("4242", uid)
	before, _ := metrics.Read(s.metricsDir())
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	after, _ := metrics.Read(s.metricsDir())
	if after.BytesStaged != before.BytesStaged || after.SiteHits != before.SiteHits+1 {
		t.Errorf("the first job after the warm-up: %+v -> %+v, want a site hit and nothing copied", before, after)
	}
	if _, err := cache.OpenSiteView(s.cacheDir, 65534); err != nil {
		t.Errorf("the site cache does not verify for a reader: %v", err)
	}
}

// TestSitePinBeforeEvict: two overlapping Prologs under a site quota that
// holds one image. Alice's kernel bert finds the site's copy of its image
// (a hit); her user part then spends seconds on a second kernel (her own
// image, on a slow file system), and meanwhile bob's Prolog stages
// another site image, whose room the site child makes by evicting bert's
// entry, which no job had pinned yet. Alice's job must not end with a
// kernel naming the deleted entry: root pins the first user part's hits,
// finds this one gone, and runs the user part again.
func TestSitePinBeforeEvict(t *testing.T) {
	s := siteNode(t)
	size := fileSizeOf(t, s.image)
	s.setConfig(t, fmt.Sprintf("site_quota = \"%dB\"\n[prolog]\ntimeout = \"12s\"\n", size+size/2))
	// Alice's bert first (its image used last), then her slow kernel.
	testkit.Must(t, os.Chtimes(s.image, time.Now().Add(time.Hour), time.Now().Add(-time.Hour)))
	r, err := s.lc(t).Warm(context.Background(), []string{s.image})
	if err != nil || len(r.Results) != 1 || !r.Results[0].Staged {
		t.Fatalf("warm = %+v, %v", r, err)
	}
	src, slow := filepath.Join(s.base, "slow-src"), filepath.Join(s.base, "slow")
	testkit.Must(t, os.MkdirAll(src, 0o755))
	testkit.Must(t, os.Mkdir(filepath.Join(src, "alice"), 0o700))
	testkit.Must(t, os.Chown(filepath.Join(src, "alice"), uid, gid))
	testkit.Must(t, os.MkdirAll(slow, 0o755))
	own := filepath.Join(src, "alice", "own.sif")
	testkit.Must(t, sifimage.Build(own, bytes.NewReader(randomBytes(t, 4<<20))))
	testkit.Must(t, os.Chown(own, uid, gid))
	testkit.Must(t, os.Chtimes(own, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)))
	testkit.SlowFS(t, src, slow, 256<<10)
	s.addKernel(t, "zslow", filepath.Join(slow, "alice", "own.sif"), "")
	// Bob's kernel: another site image.
	other := filepath.Join(s.base, "scratch", "other.sif")
	testkit.Must(t, sifimage.Build(other, bytes.NewReader(sifimage.Minimal)))
	testkit.Must(t, os.Chmod(other, 0o644))
	bobKernel := filepath.Join(s.others[bobUID].Home, ".local/share/jupyter/kernels/bert/kernel.json")
	kj := strings.Replace(string(testkit.ReadFile(t, bobKernel)), s.image, other, 1)
	testkit.Must(t, os.WriteFile(bobKernel, []byte(kj), 0o644))

	var alice bytes.Buffer
	done := make(chan error)
	go func() { done <- s.lcAs(t, "6001", uid, &alice).Prolog(context.Background()) }()
	// Alice's user part takes bert first (its image used last), so her copy
	// of zslow in progress says it has found bert's entry and not yet
	// returned for root to pin it: the window bob's Prolog is run in.
	copying := filepath.Join(s.cacheDir, "users", strconv.Itoa(uid), ".tmp-own-*")
	testkit.Eventually(t, 10*time.Second, 0, func() bool { m, _ := filepath.Glob(copying); return len(m) > 0 },
		func() string { return "alice's user part never began copying zslow\n" + alice.String() })
	var bob bytes.Buffer
	testkit.Must(t, s.lcAs(t, "6002", bobUID, &bob).Prolog(context.Background()))
	testkit.Must(t, <-done)
	for job, log := range map[string]*bytes.Buffer{"6001": &alice, "6002": &bob} {
		kernels, _ := filepath.Glob(filepath.Join(s.jobDir(job), "jupyter/kernels/*/kernel.json"))
		if len(kernels) == 0 {
			t.Errorf("job %s has no kernels\n%s", job, log.String())
		}
		for _, k := range kernels {
			spec := kernelspecLoad(t, filepath.Dir(k))
			for _, a := range spec.Argv {
				if strings.HasSuffix(a, ".sif") {
					if _, err := os.Stat(a); err != nil {
						t.Errorf("job %s's kernel %s names %s: %v\n%s", job, filepath.Base(filepath.Dir(k)), a, err, log.String())
					}
				}
			}
		}
	}
	// The window was hit: bob's site child evicted bert's entry, and root
	// found it gone when it pinned alice's hits.
	if !strings.Contains(bob.String(), "staged as") || !strings.Contains(alice.String(), "evicted before the job's ref was recorded") {
		t.Errorf("the Prologs did not overlap as the test needs\nbob:\n%s\nalice:\n%s", bob.String(), alice.String())
	}
}

// lcAs is the lifecycle as root sees it for job of uid, with an
// environment and a log of its own (for Prologs that run at once).
func (s *site) lcAs(t *testing.T, job string, u int, log *bytes.Buffer) *Env {
	e := s.lc(t)
	env := maps.Clone(s.env)
	env["SLURM_JOB_ID"], env["SLURM_JOB_UID"], env["SLURM_JOB_GID"] = job, strconv.Itoa(u), strconv.Itoa(u)
	e.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	l := logrus.New()
	l.SetOutput(log)
	e.Log = l
	return e
}

func fileSizeOf(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	testkit.Must(t, err)
	return st.Size()
}

func kernelspecLoad(t *testing.T, dir string) *kernelspec.Spec {
	k := kernelspec.Load(dir)
	testkit.Must(t, k.Err)
	return k.Spec
}

// TestSiteStepWithoutTime: with under minSiteStage left for the site child
// (a first user part that ran long), the Prolog starts neither it nor the
// user part after it: the first part's kernels stand, the pending site
// images in place and counted as cut off by the deadline.
func TestSiteStepWithoutTime(t *testing.T) {
	var log bytes.Buffer
	l := logrus.New()
	l.SetOutput(&log)
	e := &Env{Config: &config.Loaded{Config: config.Default()}, Log: l, Now: time.Now}
	dl := newDeadline(time.Now, childTail+2*phaseReserve+minSiteStage/2)
	rep := Report{Kernels: []KernelReport{
		{Name: "pub", Image: "/apps/pub.sif", SitePending: true, Reason: "left to the site cache (every user may read it)"},
		{Name: "own", Image: "/cache/own.sif", Staged: true},
	}}
	again := 0
	got, copied := e.stageForJob(context.Background(), l, &metrics.Run{}, dl, nil, nil, jid("9"), rep, false,
		func([]string) (Report, error) { again++; return Report{}, nil })
	if again != 0 || len(copied) != 0 {
		t.Errorf("with %v left, the user part ran again %d times and the site child copied %v", dl.left(), again, copied)
	}
	if k := got.Kernels[0]; !k.TimedOut || k.Staged || k.Image != "/apps/pub.sif" {
		t.Errorf("the pending site image: %+v; want it in place, cut off by the deadline", k)
	}
	if !got.Kernels[1].Staged || !strings.Contains(log.String(), "not staging 1 site images") {
		t.Errorf("report %+v, log:\n%s", got.Kernels, log.String())
	}
}
