package cache

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// stager starts the test binary as a stager process of image into root.
func stager(t *testing.T, root, image, job string, slow bool) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_ROOT="+root,
		"SIFKERNEL_CACHE_FALLBACK="+filepath.Dir(root), "SIFKERNEL_CACHE_IMAGE="+image, "SIFKERNEL_CACHE_JOB="+job)
	if slow {
		cmd.Env = append(cmd.Env, "SIFKERNEL_CACHE_SLOW=1")
	}
	return cmd
}

// TestKill9MidCopy kills a stager while it copies: no entry may appear, the
// copy in progress is found stale (its lock died with it) and removed by
// gc, and the next stager publishes a good entry.
func TestKill9MidCopy(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "big.sif", 4<<20)
	cmd := stager(t, c.opts.Root, src, "1", true)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "COPYING" {
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if m, _ := filepath.Glob(filepath.Join(c.Dir(), "*.sif")); len(m) != 0 {
		t.Fatalf("an entry was published by a killed stager: %v", m)
	}
	temps, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("want the killed stager's copy in progress, found %v", temps)
	}
	r, err := c.GC(GCOptions{})
	if err != nil || len(r.Temps) != 1 {
		t.Fatalf("gc = %+v, %v; want the stale copy removed", r, err)
	}
	res, err := c.Stage(t.Context(), src, "2", nil)
	if err != nil || !res.Copied {
		t.Fatalf("stage after the kill = %+v, %v", res, err)
	}
	if checks, _ := c.Verify(); len(checks) != 1 || !checks[0].OK {
		t.Errorf("entry after the kill: %+v", checks)
	}
}

// TestConcurrentStagers: 16 processes stage one image at once. Exactly one
// copies; all get the same entry.
func TestConcurrentStagers(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "shared.sif", 2<<20)
	const n = 16
	results := make([]Result, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := stager(t, c.opts.Root, src, strconv.Itoa(500+i), true).Output()
			_, line, ok := strings.Cut(string(out), "RESULT ")
			if err != nil || !ok {
				errs[i] = string(out)
				return
			}
			json.Unmarshal([]byte(line), &results[i])
		}()
	}
	wg.Wait()
	copies := 0
	for i, r := range results {
		if errs[i] != "" {
			t.Fatalf("stager %d failed: %s", i, errs[i])
		}
		if r.Copied {
			copies++
		}
		if r.Path != results[0].Path || !r.Staged {
			t.Errorf("stager %d got %s, stager 0 %s", i, r.Path, results[0].Path)
		}
	}
	if copies != 1 {
		t.Errorf("%d stagers copied, want exactly 1", copies)
	}
	es, _ := c.Entries()
	if len(es) != 1 || len(es[0].Refs) != n {
		t.Errorf("entries %+v, want one with %d refs", es, n)
	}
	assertNoTemps(t, c)
}
