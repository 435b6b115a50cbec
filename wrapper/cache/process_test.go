package cache

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// stager starts the test binary as a stager process of image into root.
// With a gate, the copy stops after its first chunk (printing COPYING)
// until the gate file exists.
func stager(t *testing.T, root, image, job, gate string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SIFKERNEL_CACHE_HELPER=stage", "SIFKERNEL_CACHE_ROOT="+root,
		"SIFKERNEL_CACHE_FALLBACK="+filepath.Dir(root), "SIFKERNEL_CACHE_IMAGE="+image, "SIFKERNEL_CACHE_JOB="+job)
	if gate != "" {
		cmd.Env = append(cmd.Env, "SIFKERNEL_CACHE_GATE="+gate)
	}
	return cmd
}

// TestKill9MidCopy kills a stager while it copies: no entry may appear, the
// copy in progress is found stale (its lock died with it) and removed by
// gc, and the next stager publishes a good entry.
func TestKill9MidCopy(t *testing.T) {
	c := open(t, nil)
	src := image(t, t.TempDir(), "big.sif", 4<<20)
	cmd := stager(t, c.opts.Root, src, "1", filepath.Join(t.TempDir(), "never"))
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
	_ = cmd.Wait() // killed: its error is the signal

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
	res, err := c.Stage(t.Context(), src, jid("2"), nil)
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
	// The one that copies waits, after its first chunk, until every stager
	// has opened the cache: then all of them are at the lock together.
	gate := filepath.Join(t.TempDir(), "gate")
	var wg, up sync.WaitGroup
	for i := range n {
		wg.Add(1)
		up.Add(1)
		go func() {
			defer wg.Done()
			cmd := stager(t, c.opts.Root, src, strconv.Itoa(500+i), gate)
			out, err := cmd.StdoutPipe()
			if err == nil {
				err = cmd.Start()
			}
			if err != nil {
				errs[i] = err.Error()
				up.Done()
				return
			}
			var all strings.Builder
			sc := bufio.NewScanner(out)
			signalled := false
			for sc.Scan() {
				all.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "DIR ") && !signalled {
					up.Done()
					signalled = true
				}
				if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
					if err := json.Unmarshal([]byte(line), &results[i]); err != nil {
						errs[i] = err.Error()
					}
				}
			}
			if !signalled {
				up.Done()
			}
			if err := cmd.Wait(); err != nil || results[i].Path == "" {
				errs[i] = fmt.Sprintf("%v: %s", err, all.String())
			}
		}()
	}
	up.Wait()
	testkit.Must(t, os.WriteFile(gate, nil, 0o644))
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
