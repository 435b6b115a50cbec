package jobclean

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestReapHolders: a process holding an evicted (deleted) cache entry open
// is killed, whether the entry was removed in place or, as Cache.evict
// does, moved aside to .tmp-<key>-evict first; one holding an entry still
// in the cache is left alone, and so is one holding a deleted partial copy
// (a stager of another job of the user's, see dropPartial).
func TestReapHolders(t *testing.T) {
	dir, site := t.TempDir(), t.TempDir()
	hold := func(name string) *exec.Cmd {
		p := filepath.Join(dir, name)
		if filepath.IsAbs(name) {
			p = name
		}
		if err := os.WriteFile(p, []byte("sif"), 0o400); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("sleep", "60")
		cmd.Stdin = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // killed: Wait's error is the signal
		return cmd
	}
	evicted := hold("old-0123456789abcdef.sif")
	aside := hold("aside-0123456789abcdef.sif")
	live := hold("new-0123456789abcdef.sif")
	partial := hold(".tmp-part-0123456789abcdef-2718281828")
	// A site entry the site child evicted, held by a process of this user's
	// left over from an ended job (a job that still runs holds a site ref,
	// and a referenced entry is never evicted).
	siteEntry := hold(filepath.Join(site, "shared-0123456789abcdef.sif"))
	siteAside := filepath.Join(site, ".tmp-shared-0123456789abcdef-evict")
	testkit.Must(t, os.Rename(filepath.Join(site, "shared-0123456789abcdef.sif"), siteAside))
	testkit.Must(t, os.Remove(siteAside))
	testkit.Must(t, os.Remove(filepath.Join(dir, "old-0123456789abcdef.sif")))
	moved := filepath.Join(dir, ".tmp-aside-0123456789abcdef-evict")
	testkit.Must(t, os.Rename(filepath.Join(dir, "aside-0123456789abcdef.sif"), moved))
	testkit.Must(t, os.Remove(moved))
	testkit.Must(t, os.Remove(filepath.Join(dir, ".tmp-part-0123456789abcdef-2718281828")))
	// The user's directory named through a link, as a cache.dir with a
	// (root's) link on its path is: /proc shows the resolved path.
	link := filepath.Join(t.TempDir(), "cache")
	testkit.Must(t, os.Symlink(dir, link))
	if n := reapHolders(link, site); n != 3 {
		t.Errorf("reapHolders killed %d, want 3", n)
	}
	for name, cmd := range map[string]*exec.Cmd{"removed in place": evicted, "moved aside": aside, "a site entry": siteEntry} {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("the holder of the evicted entry (%s) exited by itself; want it killed", name)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the holder of the evicted entry (%s) still runs", name)
		}
	}
	for name, cmd := range map[string]*exec.Cmd{"a live entry": live, "a deleted partial copy": partial} {
		if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
			t.Errorf("the holder of %s was killed: %v", name, err)
		}
	}
}
