package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// TestDeadline: each child and each copy gets only what is left of the
// hook's one deadline, less root's tail and the later phases' reserve.
func TestDeadline(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	dl := newDeadline(clock, 20*time.Second)
	tests := []struct {
		name       string
		elapsed    time.Duration
		childLimit time.Duration
		stageLimit time.Duration
		later      int
		child      time.Duration
		stage      time.Duration
	}{
		{"first user part, site child and second part to come", 0, 0, 120 * time.Second, 2, 17 * time.Second, 11 * time.Second},
		{"the stage limit is lower", 0, 0, 5 * time.Second, 2, 17 * time.Second, 5 * time.Second},
		{"a child's own limit", 0, 6 * time.Second, 0, 0, 6 * time.Second, 15 * time.Second},
		{"second user part, late", 14 * time.Second, 0, 120 * time.Second, 0, 3 * time.Second, time.Second},
		{"no time for a copy", 16 * time.Second, 0, 120 * time.Second, 0, time.Second, 0},
		{"no time for a child", 17 * time.Second, 0, 120 * time.Second, 0, 0, 0},
		{"past the deadline", 30 * time.Second, 0, 120 * time.Second, 0, 0, 0},
	}
	for _, tt := range tests {
		now = time.Unix(1000, 0).Add(tt.elapsed)
		if got := dl.child(tt.childLimit); got != tt.child {
			t.Errorf("%s: child = %v, want %v", tt.name, got, tt.child)
		}
		if got := dl.stage(tt.stageLimit, tt.later); got != tt.stage {
			t.Errorf("%s: stage = %v, want %v", tt.name, got, tt.stage)
		}
	}
	ctx, cancel := stageContext(context.Background(), 0, time.Time{})
	defer cancel()
	if ctx.Err() == nil {
		t.Error("a budget of 0 left time")
	}
	// The child's end is on the wall clock it shares with root.
	now = time.Unix(1000, 0)
	b, until := dl.stageBy(0, 0)
	if left := time.Until(until); b != 15*time.Second || left > b || left < b-time.Second {
		t.Errorf("stageBy = %v, ending in %v; want 15s, ending in 15s", b, left)
	}
	for _, c := range []struct {
		name   string
		budget time.Duration
		until  time.Time
		left   time.Duration
	}{
		{"no end given: the budget", time.Hour, time.Time{}, time.Hour},
		{"an end sooner than the budget", time.Hour, time.Now().Add(time.Minute), time.Minute},
		{"an end past: no time", time.Hour, time.Now().Add(-time.Second), 0},
		{"a budget sooner than the end", time.Minute, time.Now().Add(time.Hour), time.Minute},
	} {
		ctx, cancel := stageContext(context.Background(), c.budget, c.until)
		end, _ := ctx.Deadline()
		if left := max(time.Until(end), 0); left > c.left || left < c.left-time.Second {
			t.Errorf("%s: stageContext ends in %v, want %v", c.name, left, c.left)
		}
		cancel()
	}
}

// TestSlowSourceResumes: a private and a public image on a shared file
// system that gives 4 MiB/s (a FUSE stand-in, testkit.SlowFS), each taking
// longer than any one Prolog may spend copying. Every Prolog ends within
// prolog.timeout and 2 s and succeeds; the first job's kernels use both
// images in place; the next jobs resume the cut-off copies (each once at
// least, counted) until both are cached, whole, and used.
func TestSlowSourceResumes(t *testing.T) {
	const (
		timeout = 12 * time.Second
		margin  = 2 * time.Second
		rate    = 4 << 20
	)
	s := siteNode(t)
	s.setConfig(t, fmt.Sprintf("[prolog]\ntimeout = %q\n", timeout))
	testkit.Must(t, os.RemoveAll(filepath.Join(s.kernels, "bert")))
	src, shared := filepath.Join(s.base, "slow-src"), filepath.Join(s.base, "shared")
	for _, d := range []string{src, shared, filepath.Join(src, "apps"), filepath.Join(src, "alice")} {
		testkit.Must(t, os.MkdirAll(d, 0o755))
	}
	public := filepath.Join(src, "apps", "pub.sif")
	private := filepath.Join(src, "alice", "own.sif")
	testkit.Must(t, sifimage.Build(public, bytes.NewReader(randomBytes(t, 12<<20))))
	testkit.Must(t, os.Chmod(public, 0o644))
	testkit.Must(t, sifimage.Build(private, bytes.NewReader(randomBytes(t, 20<<20))))
	testkit.Must(t, os.Chmod(private, 0o600))
	testkit.Must(t, os.Chown(private, uid, gid))
	testkit.Must(t, os.Chown(filepath.Dir(private), uid, gid))
	testkit.Must(t, os.Chmod(filepath.Dir(private), 0o700))
	testkit.SlowFS(t, src, shared, rate)
	images := map[string]string{"pub": filepath.Join(shared, "apps", "pub.sif"), "own": filepath.Join(shared, "alice", "own.sif")}
	for name, img := range images {
		s.addKernel(t, name, img, "")
	}
	cached := func(job, name string) bool {
		return !slices.Contains(s.overlay(t, job, name).Argv, images[name])
	}
	done := 0
	for j := 1; j <= 6 && done == 0; j++ {
		job := strconv.Itoa(5000 + j)
		s.as(job, uid)
		start := time.Now()
		testkit.Must(t, s.lc(t).Prolog(context.Background()))
		if took := time.Since(start); took > timeout+margin {
			t.Errorf("job %s: the Prolog took %v, want at most %v", job, took.Round(time.Millisecond), timeout+margin)
		}
		if j == 1 && (cached(job, "pub") || cached(job, "own")) {
			t.Errorf("the first job's kernels use a cached copy: a copy that takes longer than the Prolog finished")
		}
		// The user part after the site child leaves her own image's copy,
		// cut off by the first user part, to the next job: resuming it for
		// the second or so left ran it into root's kill on a slow node.
		if j == 1 && !strings.Contains(s.log.String(), "copy was cut off by this Prolog's first user part") {
			t.Errorf("job %s: the second user part did not leave the first one's cut-off copy alone\n%s", job, s.log.String())
		}
		if own, _ := filepath.Glob(filepath.Join(s.cacheDir, "users", strconv.Itoa(uid), "*pub*")); len(own) > 0 {
			t.Errorf("job %s: alice's own cache holds a copy of the public image, which the site cache is copying: %v", job, own)
		}
		if cached(job, "pub") && cached(job, "own") {
			done = j
			for name, real := range map[string]string{"pub": public, "own": private} {
				argv := s.overlay(t, job, name).Argv
				i := slices.IndexFunc(argv, func(a string) bool { return strings.HasPrefix(a, s.cacheDir) })
				if i < 0 || !bytes.Equal(testkit.ReadFile(t, argv[i]), testkit.ReadFile(t, real)) {
					t.Errorf("kernel %s: the cached image is not the source (%q)", name, argv)
				}
			}
		}
		testkit.Must(t, s.lc(t).Epilog(context.Background()))
	}
	if done == 0 {
		t.Fatalf("after 6 jobs the images are still not cached\n%s", s.log.String())
	}
	t.Logf("both images cached by job %d", done)
	c, err := metrics.Read(s.metricsDir())
	testkit.Must(t, err)
	if c.CopiesResumed < 2 || c.StageTimeouts < 1 {
		t.Errorf("counted %d resumed copies and %d cut off; want both images resumed, and a cut-off counted\n%s", c.CopiesResumed, c.StageTimeouts, s.log.String())
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	testkit.Must(t, err)
	return b
}

// TestSlowStartComesOutOfTheBudget: a user part whose own start is slow
// (here Apptainer's --version takes 4 s, as on a loaded node's first job)
// stages only until the end root gave it, not for its whole budget after
// that start, so root never has to kill it: it writes the job's kernels
// (the image in place) and replies. A budget counted from the child's own
// start ran 4 s past root's kill.
func TestSlowStartComesOutOfTheBudget(t *testing.T) {
	const timeout = 16 * time.Second
	s := newSite(t)
	s.setConfig(t, fmt.Sprintf("[prolog]\ntimeout = %q\n", timeout))
	runtime := filepath.Join(s.base, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	testkit.Must(t, os.WriteFile(runtime, []byte("#!/bin/sh\nsleep 4\necho apptainer version 1.4.1\n"), 0o755))
	src, shared := filepath.Join(s.base, "slow-src"), filepath.Join(s.base, "shared")
	testkit.Must(t, os.MkdirAll(src, 0o755))
	testkit.Must(t, os.MkdirAll(shared, 0o755))
	testkit.Must(t, sifimage.Build(filepath.Join(src, "big.sif"), bytes.NewReader(randomBytes(t, 48<<20))))
	testkit.Must(t, os.Chown(filepath.Join(src, "big.sif"), uid, gid))
	testkit.SlowFS(t, src, shared, 2<<20) // 24 s for the image
	image := filepath.Join(shared, "big.sif")
	s.addKernel(t, "bert", image, "")
	s.as("5101", uid)
	start := time.Now()
	testkit.Must(t, s.lc(t).Prolog(context.Background()))
	took := time.Since(start)
	if took > timeout+2*time.Second {
		t.Errorf("the Prolog took %v, want at most %v", took.Round(time.Millisecond), timeout+2*time.Second)
	}
	if strings.Contains(s.log.String(), "killed") {
		t.Errorf("root killed the user part: its start came out of the time after its budget\n%s", s.log.String())
	}
	if _, err := os.Stat(filepath.Join(s.jobDir("5101"), "node.json")); err != nil {
		t.Errorf("the user part wrote no node.json: %v\n%s", err, s.log.String())
	}
	if argv := s.overlay(t, "5101", "bert").Argv; !slices.Contains(argv, image) {
		t.Errorf("the job's kernel does not use the image in place: %q", argv)
	}
	testkit.Must(t, s.lc(t).Epilog(context.Background()))
}

// TestCutOffBounded: the images a first user part ran out of time on go
// back to her second one in its argv, once each, within max_per_job and
// maxCutOffBytes, however her report was shaped.
func TestCutOffBounded(t *testing.T) {
	long := "/scratch/" + strings.Repeat("x", maxReportString-20) + ".sif"
	r := Report{Kernels: []KernelReport{
		{Name: "a", Image: "/scratch/a.sif", TimedOut: true},
		{Name: "b", Image: "/scratch/a.sif", TimedOut: true},
		{Name: "c", Image: "/cache/c.sif", Staged: true},
		{Name: "d", Image: "/site/d.sif", TimedOut: true, Site: true},
		{Name: "e", Image: "/scratch/e.sif", TimedOut: true},
	}}
	if got := r.cutOff(64); !slices.Equal(got, []string{"/scratch/a.sif", "/scratch/e.sif"}) {
		t.Errorf("cutOff = %q", got)
	}
	if got := r.cutOff(4); !slices.Equal(got, []string{"/scratch/a.sif"}) {
		t.Errorf("cutOff within 4 kernels = %q", got)
	}
	r.Kernels = nil
	for i := range 200 {
		r.Kernels = append(r.Kernels, KernelReport{Name: strconv.Itoa(i), Image: long + strconv.Itoa(i), TimedOut: true})
	}
	n := 0
	for _, img := range r.cutOff(1000) {
		n += len(img)
	}
	if n == 0 || n > maxCutOffBytes {
		t.Errorf("cutOff of 200 long paths: %d bytes, want some and at most %d", n, maxCutOffBytes)
	}
}
