package apptainer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestFindCached: the version is asked once per runtime install; a runtime
// replaced in place is asked again; a damaged or hostile cache file is
// replaced, never trusted and never blocks.
func TestFindCached(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "bin", "apptainer")
	calls := filepath.Join(dir, "calls")
	write := func(version string) {
		t.Helper()
		testkit.Must(t, os.MkdirAll(filepath.Dir(rt), 0o755))
		script := "#!/bin/sh\necho x >>" + calls + "\necho apptainer version " + version + "\n"
		tmp := rt + ".new"
		testkit.Must(t, os.WriteFile(tmp, []byte(script), 0o755))
		testkit.Must(t, os.Rename(tmp, rt)) // a new inode, as a package upgrade makes
	}
	count := func() int {
		b := testkit.ReadOptional(t, calls)
		return strings.Count(string(b), "x")
	}
	write("1.4.1")
	f := Finder{ConfigPath: rt}
	cache := filepath.Join(dir, "cache", "apptainer-version")
	testkit.Must(t, os.MkdirAll(filepath.Dir(cache), 0o700))
	find := func(want string) {
		t.Helper()
		got, err := f.FindCached(context.Background(), cache)
		if err != nil || got.Version != want || got.Path != rt {
			t.Fatalf("FindCached = %+v, %v; want version %s", got, err, want)
		}
	}
	find("1.4.1")
	find("1.4.1")
	find("1.4.1")
	if n := count(); n != 1 {
		t.Errorf("--version ran %d times for one install, want 1", n)
	}
	write("1.5.3")
	find("1.5.3")
	if n := count(); n != 2 {
		t.Errorf("--version ran %d times after an upgrade, want 2", n)
	}
	// A user who edits the file changes only their kernels' metadata; a
	// damaged file is asked again and replaced.
	testkit.Must(t, os.WriteFile(cache, []byte(`{"path": "`+rt+`", "id": [1`), 0o600))
	find("1.5.3")
	if n := count(); n != 3 {
		t.Errorf("a damaged cache was trusted (%d calls)", n)
	}
	find("1.5.3")
	if n := count(); n != 3 {
		t.Errorf("the replaced cache was not used (%d calls)", n)
	}
	// A FIFO in its place: not opened for reading (it would block), asked again.
	testkit.Must(t, os.Remove(cache))
	testkit.Must(t, syscall.Mkfifo(cache, 0o600))
	done := make(chan Runtime)
	go func() {
		got, _ := f.FindCached(context.Background(), cache)
		done <- got
	}()
	select {
	case got := <-done:
		if got.Version != "1.5.3" {
			t.Errorf("with a FIFO as the cache: %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FindCached blocked on a FIFO")
	}
}
