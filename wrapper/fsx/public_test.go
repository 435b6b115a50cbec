package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestOpenPublic: only a regular file every user could read, through
// directories every user could enter, is opened; a link is followed to
// its target, which is what is checked.
func TestOpenPublic(t *testing.T) {
	base := testkit.SharedDir(t) // t.TempDir's parent is private to the test's user
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(base, rel)
		testkit.Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		testkit.Must(t, os.WriteFile(p, []byte("sif"), mode))
		testkit.Must(t, os.Chmod(p, mode))
		return p
	}
	public := mk("apps/containers/torch.sif", 0o644)
	private := mk("home/alice/private.sif", 0o600)
	groupOnly := mk("apps/group.sif", 0o640)
	hidden := mk("home/bob/secret/img.sif", 0o644)
	testkit.Must(t, os.Chmod(filepath.Dir(hidden), 0o750))
	testkit.Must(t, os.Symlink(public, filepath.Join(base, "apps/latest.sif")))
	testkit.Must(t, os.Symlink(hidden, filepath.Join(base, "apps/to-hidden.sif")))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(base, "apps/fifo.sif"), 0o644))
	testkit.Must(t, os.Chmod(filepath.Join(base, "apps/fifo.sif"), 0o644))

	f, real, err := OpenPublic(filepath.Join(base, "apps/latest.sif"))
	if err != nil || real != public {
		t.Fatalf("OpenPublic of a link to a public file = %v, %s", err, real)
	}
	testkit.Must(t, f.Close())
	f, _, err = OpenPublic(filepath.Join(base, "apps/containers/../containers/torch.sif"))
	if err != nil {
		t.Errorf("OpenPublic through ..: %v", err)
	} else {
		testkit.Must(t, f.Close())
	}
	for _, tt := range []struct {
		path string
		is   error
	}{
		{private, ErrNotPublic},
		{groupOnly, ErrNotPublic},
		{hidden, ErrNotPublic},
		{filepath.Join(base, "apps/to-hidden.sif"), ErrNotPublic},
		{filepath.Join(base, "apps/fifo.sif"), ErrNotRegular},
		{filepath.Join(base, "apps"), ErrNotRegular},
	} {
		if f, _, err := OpenPublic(tt.path); !errors.Is(err, tt.is) {
			if f != nil {
				testkit.Must(t, f.Close())
			}
			t.Errorf("OpenPublic(%s) = %v, want %v", tt.path, err, tt.is)
		}
	}
}
