package fsx

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

const other = 1234 // a uid that is not root

func TestOpenRegularRefusesWhatCouldBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	testkit.Must(t, syscall.Mkfifo(fifo, 0o644))
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	testkit.Must(t, err)
	defer func() { _ = l.Close() }()
	file := filepath.Join(dir, "file")
	testkit.Must(t, os.WriteFile(file, []byte("ok"), 0o644))
	link := filepath.Join(dir, "link")
	testkit.Must(t, os.Symlink(file, link))
	fifoLink := filepath.Join(dir, "fifo-link")
	testkit.Must(t, os.Symlink(fifo, fifoLink))
	tests := []struct {
		name     string
		path     string
		nofollow bool
		wantErr  error
	}{
		{"regular file", file, true, nil},
		{"FIFO", fifo, false, ErrNotRegular},
		{"link to a FIFO", fifoLink, false, ErrNotRegular},
		{"socket", sock, false, ErrNotRegular},
		{"character device", "/dev/zero", false, ErrNotRegular},
		{"directory", dir, false, ErrNotRegular},
		{"link, followed", link, false, nil},
		{"link, not followed", link, true, ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			data, err := ReadRegular(tt.path, 10, tt.nofollow)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v: something blocked", d)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(data) != "ok" {
				t.Errorf("read %q", data)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				var pe *os.PathError
				if !errors.As(err, &pe) || pe.Path != tt.path {
					t.Errorf("error %v does not name %s", err, tt.path)
				}
			}
		})
	}
}

func TestReadRegularLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big")
	testkit.Must(t, os.WriteFile(file, make([]byte, 11), 0o644))
	if _, err := ReadRegular(file, 10, true); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if data, err := ReadRegular(file, 11, true); err != nil || len(data) != 11 {
		t.Fatalf("read %d bytes, %v", len(data), err)
	}
}

// tree makes a root-owned 0755 directory other users can enter.
func tree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "ownership checks need root to make files of other users")
	}
	return testkit.SharedDir(t)
}

func TestOpenTrustedDir(t *testing.T) {
	base := tree(t)
	mk := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(base, name)
		testkit.Must(t, os.MkdirAll(p, 0o755))
		testkit.Must(t, os.Chmod(p, mode))
		testkit.Must(t, os.Lchown(p, uid, uid))
		return p
	}
	good := mk("good", 0o755, 0)
	userDir := mk("user", 0o755, other)
	groupW := mk("groupw", 0o775, 0)
	sticky := mk("sticky", os.ModeSticky|0o777, 0)
	mk("sticky/inner", 0o755, 0)
	mk("sticky/theirs", 0o755, other)
	mk("user/inner", 0o755, 0)
	testkit.Must(t, os.Symlink(good, filepath.Join(base, "rootlink")))
	testkit.Must(t, os.Symlink("good", filepath.Join(base, "rellink")))
	testkit.Must(t, os.Symlink(good, filepath.Join(sticky, "userlink")))
	testkit.Must(t, os.Lchown(filepath.Join(sticky, "userlink"), other, other))
	testkit.Must(t, os.MkdirAll(filepath.Join(good, "sub"), 0o755))
	tests := []struct {
		name, path string
		create     bool
		wantErr    bool
	}{
		{"root's directory", good, false, false},
		{"created in root's directory", filepath.Join(good, "new"), true, false},
		{"missing, not created", filepath.Join(good, "absent"), false, true},
		{"owned by a user", userDir, false, true},
		{"group-writable", groupW, false, true},
		{"sticky as the end", sticky, false, true},
		{"root's, below a sticky directory", filepath.Join(sticky, "inner"), false, false},
		{"a user's, below a sticky directory", filepath.Join(sticky, "theirs"), false, true},
		{"root's, below a user's directory", filepath.Join(userDir, "inner"), false, true},
		{"itself a symlink", filepath.Join(base, "rootlink"), false, true},
		{"through root's symlink", filepath.Join(base, "rootlink", "sub"), false, false},
		{"through root's relative symlink", filepath.Join(base, "rellink", "sub"), false, false},
		{"through a user's symlink", filepath.Join(sticky, "userlink", "sub"), false, true},
		{"dot-dot after a symlink", base + "/rootlink/../good/sub", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenTrustedDir(tt.path, tt.create, 0o755)
			if (err != nil) != tt.wantErr {
				t.Fatalf("OpenTrustedDir(%s) err = %v, want error %v", tt.path, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer r.Close()
			st, err := os.Stat(tt.path)
			testkit.Must(t, err)
			if !st.IsDir() || st.Mode().Perm() != 0o755 {
				t.Errorf("%s: mode %v", tt.path, st.Mode())
			}
		})
	}
}

func TestTrustedSubdir(t *testing.T) {
	base := tree(t)
	r, err := OpenTrustedDir(base, false, 0o755)
	testkit.Must(t, err)
	defer r.Close()
	testkit.Must(t, os.Symlink("/etc", filepath.Join(base, "jobs")))
	if _, err := TrustedSubdir(r, "jobs", true, 0o755); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a symlink as jobs: err = %v, want ErrUntrusted", err)
	}
	testkit.Must(t, os.Mkdir(filepath.Join(base, "users"), 0o755))
	testkit.Must(t, os.Chown(filepath.Join(base, "users"), other, other))
	if _, err := TrustedSubdir(r, "users", true, 0o755); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a user's users/: err = %v, want ErrUntrusted", err)
	}
	sub, err := TrustedSubdir(r, "fresh", true, 0o755)
	testkit.Must(t, err)
	sub.Close()
	if st, err := os.Lstat(filepath.Join(base, "fresh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("fresh: %v %v", st, err)
	}
}

func TestCheckTrustedFile(t *testing.T) {
	base := tree(t)
	write := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(base, name)
		testkit.Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		testkit.Must(t, os.WriteFile(p, []byte("x"), mode))
		testkit.Must(t, os.Chmod(p, mode))
		testkit.Must(t, os.Lchown(p, uid, uid))
		return p
	}
	good := write("etc/config.toml", 0o644, 0)
	theirs := write("etc/theirs.toml", 0o644, other)
	writable := write("etc/writable.toml", 0o666, 0)
	inUserDir := write("home/config.toml", 0o644, 0)
	testkit.Must(t, os.Chown(filepath.Dir(inUserDir), other, other))
	testkit.Must(t, os.Symlink("config.toml", filepath.Join(base, "etc/link.toml")))
	testkit.Must(t, os.Symlink(inUserDir, filepath.Join(base, "etc/to-home.toml")))
	testkit.Must(t, syscall.Mkfifo(filepath.Join(base, "etc/fifo"), 0o644))
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"root's file in root's directories", good, true},
		{"a user's file", theirs, false},
		{"writable by others", writable, false},
		{"root's file in a user's directory", inUserDir, false},
		{"root's link to root's file", filepath.Join(base, "etc/link.toml"), true},
		{"root's link into a user's directory", filepath.Join(base, "etc/to-home.toml"), false},
		{"a FIFO", filepath.Join(base, "etc/fifo"), false},
		{"missing", filepath.Join(base, "etc/none"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTrustedFile(tt.path)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckTrustedFile(%s) = %v, want ok %v", tt.path, err, tt.ok)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	for _, d := range []Durability{Volatile, Durable} {
		dir := t.TempDir()
		p := filepath.Join(dir, "node.json")
		testkit.Must(t, WriteFile(p, []byte("one"), 0o600, d))
		testkit.Must(t, WriteFile(p, []byte("two"), 0o640, d))
		st, err := os.Stat(p)
		testkit.Must(t, err)
		if b := string(testkit.ReadFile(t, p)); b != "two" || st.Mode().Perm() != 0o640 {
			t.Errorf("%s = %q, mode %v", p, b, st.Mode().Perm())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("temporary files left: %v", ents)
		}
		if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o600, d); err == nil || !strings.Contains(err.Error(), "missing/x") {
			t.Errorf("a missing directory = %v, want an error naming the file", err)
		}
	}
}

// TestPending: nothing is published before Publish; a pending file given
// up (or a failed program's) leaves nothing; PublishNew never replaces; a
// reserved name takes the file another program wrote, its mode kept.
func TestPending(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kernel.json")
	w, err := Create(p)
	testkit.Must(t, err)
	_, err = w.Write([]byte("half"))
	testkit.Must(t, err)
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("%s exists before Publish: %v", p, err)
	}
	w.Cleanup()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Cleanup left %v", ents)
	}

	testkit.Must(t, os.WriteFile(p, []byte("mine"), 0o644))
	w, err = Create(p)
	testkit.Must(t, err)
	defer w.Cleanup()
	_, err = w.Write([]byte("new"))
	testkit.Must(t, err)
	if err := w.PublishNew(0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("PublishNew over an existing file = %v, want ErrExist", err)
	}
	w.Cleanup()
	if b := string(testkit.ReadFile(t, p)); b != "mine" {
		t.Errorf("PublishNew replaced %s: %q", p, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("a refused PublishNew left %v", ents)
	}

	r, err := Reserve(filepath.Join(dir, "img.sif"))
	testkit.Must(t, err)
	defer r.Cleanup()
	testkit.Must(t, os.WriteFile(r.Name(), []byte("SIF"), 0o755))
	testkit.Must(t, r.Publish(0, Durable))
	st, err := os.Stat(filepath.Join(dir, "img.sif"))
	testkit.Must(t, err)
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode 0 changed the writer's mode to %v", st.Mode().Perm())
	}
	r.Cleanup()
	if _, err := os.Stat(filepath.Join(dir, "img.sif")); err != nil {
		t.Errorf("Cleanup after Publish removed the file: %v", err)
	}
}

// TestWriteFileIn writes through a directory's descriptor: a link where the
// name was is replaced, never followed.
func TestWriteFileIn(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "victim")
	testkit.Must(t, os.WriteFile(victim, []byte("keep"), 0o600))
	testkit.Must(t, os.Symlink(victim, filepath.Join(dir, "counters.json")))
	root, err := os.OpenRoot(dir)
	testkit.Must(t, err)
	defer root.Close()
	testkit.Must(t, WriteFileIn(root, "counters.json", []byte("{}"), 0o644, Durable))
	if b := string(testkit.ReadFile(t, victim)); b != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	if st, err := os.Lstat(filepath.Join(dir, "counters.json")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("counters.json = %v, %v; want a regular file", st, err)
	}
}
