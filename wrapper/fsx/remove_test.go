package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func openTestDir(t *testing.T, dir string) *os.File {
	t.Helper()
	d, err := os.Open(dir)
	testkit.Must(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// nest makes depth directories one inside the other below dir, through
// descriptors: the path is far longer than PATH_MAX.
func nest(t *testing.T, dir string, depth int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	testkit.Must(t, err)
	for range depth {
		testkit.Must(t, unix.Mkdirat(fd, "d", 0o700))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		testkit.Must(t, err)
		unix.Close(fd)
		fd = next
	}
	f, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // a file at the bottom too
	testkit.Must(t, err)
	unix.Close(f)
	testkit.Must(t, unix.Mkdirat(fd, "last", 0o500))
	unix.Close(fd)
}

func TestRemoveTreeDeeperThanTheDescriptorLimit(t *testing.T) {
	var old syscall.Rlimit
	testkit.Must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
	low := old
	low.Cur = 64
	testkit.Must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	defer func() { testkit.Must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)) }()
	base := t.TempDir()
	nest(t, filepath.Join(base), 3000) // base/d/d/.../last
	if err := RemoveTree(openTestDir(t, base), "d", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(base, "d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tree is still there: %v", err)
	}
}

func TestRemoveTreeFollowsNoLink(t *testing.T) {
	base, outside := t.TempDir(), t.TempDir()
	testkit.Must(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o600))
	top := filepath.Join(base, "job")
	testkit.Must(t, os.MkdirAll(filepath.Join(top, "a/b"), 0o755))
	testkit.Must(t, os.Symlink(outside, filepath.Join(top, "a/b/link")))
	testkit.Must(t, os.Symlink(outside, filepath.Join(base, "toplink")))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(top, "fifo"), 0o600))
	d := openTestDir(t, base)
	testkit.Must(t, RemoveTree(d, "job", RemoveOptions{}))
	testkit.Must(t, RemoveTree(d, "toplink", RemoveOptions{}))
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a file behind a link was removed: %v", err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
}

func TestRemoveTreeKeepTopAndMissing(t *testing.T) {
	base := t.TempDir()
	testkit.Must(t, os.MkdirAll(filepath.Join(base, "job/x/y"), 0o755))
	d := openTestDir(t, base)
	testkit.Must(t, RemoveTree(d, "job", RemoveOptions{KeepTop: true}))
	if ents, err := os.ReadDir(filepath.Join(base, "job")); err != nil || len(ents) != 0 {
		t.Errorf("job: %v, %v; want kept and empty", ents, err)
	}
	testkit.Must(t, RemoveTree(d, "nothing-here", RemoveOptions{}))
}

func TestRemoveTreeStopsAtTheDeadline(t *testing.T) {
	base := t.TempDir()
	top := filepath.Join(base, "job")
	testkit.Must(t, os.MkdirAll(top, 0o755))
	for i := range 600 {
		testkit.Must(t, os.WriteFile(filepath.Join(top, strings.Repeat("f", 1+i%50)+string(rune('a'+i%26))+time.Duration(i).String()), nil, 0o644))
	}
	err := RemoveTree(openTestDir(t, base), "job", RemoveOptions{Deadline: time.Now().Add(-time.Second)})
	if !errors.Is(err, ErrDeadline) {
		t.Errorf("err = %v, want ErrDeadline", err)
	}
}

func TestRemoveTreeCrossesNoMount(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.Skip(t, "mounting a file system needs root")
	}
	base := t.TempDir()
	mnt := filepath.Join(base, "job/sub/mnt")
	testkit.Must(t, os.MkdirAll(mnt, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(base, "job/sub/file"), nil, 0o644))
	testkit.Must(t, unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"))
	defer func() { testkit.Must(t, unix.Unmount(mnt, unix.MNT_DETACH)) }()
	testkit.Must(t, os.WriteFile(filepath.Join(mnt, "theirs"), []byte("x"), 0o644))
	err := RemoveTree(openTestDir(t, base), "job", RemoveOptions{})
	if err == nil || !strings.Contains(err.Error(), "mount point") {
		t.Errorf("err = %v, want one naming the mount point", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "theirs")); err != nil {
		t.Errorf("a file inside the mount was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "job/sub/file")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("what could be removed beside the mount was not: %v", err)
	}
	if _, err := LstatAt(openTestDir(t, filepath.Join(base, "job/sub")), "mnt"); !errors.Is(err, ErrOtherMount) {
		t.Errorf("LstatAt of a mount point = %v, want ErrOtherMount", err)
	}
}
