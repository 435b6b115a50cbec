package fsx

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestOpenSiteImage: only a regular file the site owns and every user may
// read, through directories the site owns and every user may enter, is
// opened; a link (the site's) is followed to its target, which is what is
// checked. The test's own uid stands for root where it is not root.
func TestOpenSiteImage(t *testing.T) {
	base := testkit.SharedDir(t) // t.TempDir's parent is private to the test's user
	owners := []int{os.Geteuid()}
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
	groupDenied := mk("apps/licensed.sif", 0o604)
	groupWritable := mk("apps/shared.sif", 0o664)
	hidden := mk("home/bob/secret/img.sif", 0o644)
	testkit.Must(t, os.Chmod(filepath.Dir(hidden), 0o750))
	groupNoEntry := mk("apps/g705/img.sif", 0o644)
	testkit.Must(t, os.Chmod(filepath.Dir(groupNoEntry), 0o705))
	openDir := mk("apps/open/img.sif", 0o644)
	testkit.Must(t, os.Chmod(filepath.Dir(openDir), 0o777))
	inSticky := mk("apps/tmp/img.sif", 0o644)
	testkit.Must(t, os.Chmod(filepath.Dir(inSticky), os.ModeSticky|0o777))
	testkit.Must(t, os.Symlink(public, filepath.Join(base, "apps/latest.sif")))
	testkit.Must(t, os.Symlink(hidden, filepath.Join(base, "apps/to-hidden.sif")))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(base, "apps/fifo.sif"), 0o644))
	testkit.Must(t, os.Chmod(filepath.Dir(filepath.Join(base, "apps/fifo.sif")), 0o755))
	testkit.Must(t, os.Chmod(filepath.Join(base, "apps/fifo.sif"), 0o644))

	for _, ok := range []string{filepath.Join(base, "apps/latest.sif"), filepath.Join(base, "apps/containers/../containers/torch.sif"), inSticky} {
		f, _, err := OpenSiteImage(ok, owners)
		if err != nil {
			t.Errorf("OpenSiteImage(%s) = %v; want it opened", ok, err)
			continue
		}
		testkit.Must(t, f.Close())
	}
	cases := []struct {
		path string
		is   error
	}{
		{private, ErrNotPublic},
		{groupOnly, ErrNotPublic},
		{groupDenied, ErrNotPublic},
		{groupWritable, ErrNotPublic},
		{hidden, ErrNotPublic},
		{groupNoEntry, ErrNotPublic},
		{openDir, ErrNotPublic},
		{filepath.Join(base, "apps/to-hidden.sif"), ErrNotPublic},
		{filepath.Join(base, "apps/fifo.sif"), ErrNotRegular},
		{filepath.Join(base, "apps"), ErrNotRegular},
	}
	if os.Geteuid() == 0 { // what a user owns, in directories the site owns
		users := mk("apps/tmp/users.sif", 0o644)
		testkit.Must(t, os.Chown(users, 12345, 12345))
		link := filepath.Join(base, "apps/tmp/users-link.sif")
		testkit.Must(t, os.Symlink(public, link))
		testkit.Must(t, os.Lchown(link, 12345, 12345))
		cases = append(cases, struct {
			path string
			is   error
		}{users, ErrNotPublic}, struct {
			path string
			is   error
		}{link, ErrNotPublic})
		f, _, err := OpenSiteImage(users, []int{12345})
		if err != nil {
			t.Errorf("a file of an account in cache.site_owners: %v", err)
		} else {
			testkit.Must(t, f.Close())
		}
	}
	if setfacl, err := exec.LookPath("setfacl"); err != nil {
		testkit.Skip(t, "setfacl (Debian's acl) is needed for the ACL case")
	} else {
		// 0644 for all, but an ACL entry denies one user: not every user may read it.
		denied := mk("apps/acl.sif", 0o644)
		if out, err := exec.Command(setfacl, "-m", "u:12345:---", denied).CombinedOutput(); err != nil {
			t.Fatalf("setfacl: %v\n%s", err, out)
		}
		cases = append(cases, struct {
			path string
			is   error
		}{denied, ErrNotPublic})
	}
	for _, tt := range cases {
		if f, _, err := OpenSiteImage(tt.path, owners); !errors.Is(err, tt.is) {
			if f != nil {
				testkit.Must(t, f.Close())
			}
			t.Errorf("OpenSiteImage(%s) = %v, want %v", tt.path, err, tt.is)
		}
	}
}
