// Package testkit holds what sifkernel's tests share: golden files and the
// rule that nothing skips silently in CI.
package testkit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
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
