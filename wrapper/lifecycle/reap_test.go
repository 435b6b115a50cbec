package lifecycle

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
// is killed; one holding an entry still in the cache is left alone.
func TestReapHolders(t *testing.T) {
	dir := t.TempDir()
	hold := func(name string) *exec.Cmd {
		p := filepath.Join(dir, name)
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
	evicted, live := hold("old-0123456789abcdef.sif"), hold("new-0123456789abcdef.sif")
	testkit.Must(t, os.Remove(filepath.Join(dir, "old-0123456789abcdef.sif")))
	if n := reapHolders(dir); n != 1 {
		t.Errorf("reapHolders killed %d, want 1", n)
	}
	done := make(chan error, 1)
	go func() { done <- evicted.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the holder of the evicted entry exited by itself; want it killed")
		}
	case <-time.After(5 * time.Second):
		t.Error("the holder of the evicted entry still runs")
	}
	if err := syscall.Kill(live.Process.Pid, 0); err != nil {
		t.Errorf("the holder of a live entry was killed: %v", err)
	}
}
