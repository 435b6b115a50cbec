// Package testkit holds what sifkernel's tests share, the unit tests under
// wrapper/ and the cluster tests in testcluster/e2e alike: the rule that
// nothing skips silently in CI, setup steps that fail loudly, golden files,
// running as another user, and the real Apptainer and test image. Tests
// only: the binary never imports it.
package testkit

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// NoSkipVar is the variable CI sets: with it, Skip fails the test instead.
const NoSkipVar = "SIFKERNEL_NO_SKIP"

// Skip skips a test that lacks a tool or privilege, or fails it when
// SIFKERNEL_NO_SKIP=1, so CI can never pass by skipping.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(NoSkipVar) == "1" {
		t.Fatalf("%s=1 and this test cannot run: %s", NoSkipVar, reason)
	}
	t.Skip(reason)
}

// Golden compares got with testdata/<TestName>.golden (subtests give
// folders), after replacing each key of replace by its value, so temporary
// paths do not end up in golden files. go test -update rewrites the files.
func Golden(t testing.TB, got []byte, replace ...string) {
	t.Helper()
	if len(replace) > 0 {
		got = []byte(strings.NewReplacer(replace...).Replace(string(got)))
	}
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// RunAs runs the test binary again as uid:gid with env added, for tests of
// what another user may do. The binary is copied where that user can run it.
// It needs root: otherwise the test is skipped (or fails in CI).
func RunAs(t testing.TB, uid, gid int, env []string, args ...string) ([]byte, error) {
	t.Helper()
	return AsUser(t, UserBinary(t), uid, gid, env, args...).CombinedOutput()
}

// UserBinary copies the test binary where any user can run it, once for
// the calling test (several processes may then run it at once: a binary
// being written cannot be run).
func UserBinary(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "running as another user needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sifkernel-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	bin := filepath.Join(dir, filepath.Base(self))
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// AsUser is the command that runs bin (see UserBinary) as uid:gid.
func AsUser(t testing.TB, bin string, uid, gid int, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}

// SharedDir is a temporary directory other users can enter (t.TempDir's
// parent is private to the test's user), removed when the test ends.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sifkernel-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// RepoRoot is the top of the source tree, found from this file's path.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Apptainer is the real Apptainer the tests run kernels with:
// $SIFKERNEL_APPTAINER, else where ../shared/apptainer/install puts it. A
// test without one skips (fails in CI).
func Apptainer(t testing.TB) string {
	t.Helper()
	p := os.Getenv("SIFKERNEL_APPTAINER")
	if p == "" {
		p = "/opt/apps/tacc-apptainer/1.5.3/bin/apptainer"
	}
	if _, err := os.Stat(p); err != nil {
		Skip(t, "no Apptainer at "+p+": run ../shared/apptainer/install (or set SIFKERNEL_APPTAINER)")
	}
	return p
}

// PythonImage is the tests' Python image (testcluster/image/build: Debian's
// python3-ipykernel in a SIF, with /sifkernel-marker), built once per
// machine and cached; building it needs root and Debian's package lists.
func PythonImage(t testing.TB) string {
	t.Helper()
	rt := Apptainer(t)
	if os.Geteuid() != 0 {
		Skip(t, "building the test image needs root (apt-get download, apptainer build)")
	}
	out, err := exec.Command(filepath.Join(RepoRoot(), "testcluster", "image", "build"), rt).Output()
	if err != nil {
		t.Fatalf("testcluster/image/build: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// ImageMarker is what the test image's /sifkernel-marker holds.
const ImageMarker = "sifkernel test image"

// LoggingApptainer writes, at path, the tests' logging front of the real
// Apptainer (testcluster/bin/apptainer-log) logging to logPath.
func LoggingApptainer(t testing.TB, path, real, logPath string) {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(RepoRoot(), "testcluster", "bin", "apptainer-log"))
	if err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer("@REAL@", real, "@LOG@", logPath).Replace(string(tmpl))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Must fails the test at once on a setup step's error: a test whose setup
// silently failed could pass without testing anything.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
}

// CoverDirVar names a directory (writable by every test user) where
// binaries the tests build write coverage data: `make cover` sets it, so
// the code a hook runs in its child as the job user is counted too.
const CoverDirVar = "SIFKERNEL_COVERDIR"

// BuildFlags are the extra `go build` flags for a binary the tests run:
// with CoverDirVar set, an instrumented build of every sifkernel package.
func BuildFlags() []string {
	if os.Getenv(CoverDirVar) == "" {
		return nil
	}
	return []string{"-cover", "-coverpkg=github.com/sifkernel/sifkernel/..."}
}

// CoverEnv is the environment an instrumented binary needs: GOCOVERDIR,
// or nothing when coverage is off.
func CoverEnv() map[string]string {
	if d := os.Getenv(CoverDirVar); d != "" {
		return map[string]string{"GOCOVERDIR": d}
	}
	return nil
}

// ReadFile is os.ReadFile for a file a test's setup made or expects.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return b
}

// ReadOptional is ReadFile for a file that may rightly be missing (a log
// nothing has written to yet, the call log of a program never run): nil
// when it does not exist. Any other error fails the test.
func ReadOptional(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading %s: %v", path, err)
	}
	return b
}

// Eventually waits for cond, asking every every (20 ms if 0), and fails
// the test with what explain says (called then, so it may read logs) when
// timeout passes first: the one poll loop of the tests.
func Eventually(t testing.TB, timeout, every time.Duration, cond func() bool, explain func() string) {
	t.Helper()
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s: %s", timeout, explain())
		}
		time.Sleep(every)
	}
}
