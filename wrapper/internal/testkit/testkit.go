// Package testkit holds what sifkernel's tests share: golden files and the
// rule that nothing skips silently in CI.
package testkit

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
	t.Cleanup(func() { os.RemoveAll(dir) })
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
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd.CombinedOutput()
}

// SharedDir is a temporary directory other users can enter (t.TempDir's
// parent is private to the test's user), removed when the test ends.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sifkernel-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
