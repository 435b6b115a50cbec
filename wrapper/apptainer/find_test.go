package apptainer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestCompareVersions(t *testing.T) {
	ordered := []string{"1.0", "1.3.0-rc.1", "1.3.0", "1.3.3", "1.9.3", "1.10.0", "2", "10.0.0"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"apptainer version 1.3.3\n":      "1.3.3",
		"singularity-ce version 4.1.0-1": "4.1.0-1",
		"1.2.5":                          "1.2.5",
		"":                               "",
	} {
		if got := ParseVersion(in); got != want {
			t.Errorf("ParseVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeRuntime writes an executable that answers --version like Apptainer.
func fakeRuntime(t *testing.T, path, version string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"apptainer version " + version + "\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	opt := filepath.Join(root, "opt/apps/tacc-apptainer")
	v133 := fakeRuntime(t, filepath.Join(opt, "1.3.3/bin/apptainer"), "1.3.3")
	v193 := fakeRuntime(t, filepath.Join(opt, "1.9.3/bin/apptainer"), "1.9.3")
	v1100 := fakeRuntime(t, filepath.Join(opt, "1.10.0/bin/apptainer"), "1.10.0")
	onPath := fakeRuntime(t, filepath.Join(root, "bin/singularity"), "3.8.7")
	notExec := filepath.Join(root, "noexec/apptainer")
	testkit.Must(t, os.MkdirAll(filepath.Dir(notExec), 0o755))
	testkit.Must(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	glob := filepath.Join(opt, "*/bin/apptainer")

	tests := []struct {
		name     string
		f        Finder
		env      map[string]string
		wantPath string
		wantRule string
		wantVer  string
	}{
		{name: "config path first", f: Finder{ConfigPath: v133, Search: []string{glob}}, env: map[string]string{"APPTAINER_BIN": v193},
			wantPath: v133, wantRule: "config apptainer.path", wantVer: "1.3.3"},
		{name: "APPTAINER_BIN", f: Finder{Search: []string{glob}}, env: map[string]string{"APPTAINER_BIN": v193, "PATH": filepath.Dir(onPath)},
			wantPath: v193, wantRule: "APPTAINER_BIN", wantVer: "1.9.3"},
		{name: "singularity on PATH", f: Finder{Search: []string{glob}}, env: map[string]string{"PATH": "relative:" + filepath.Dir(onPath)},
			wantPath: onPath, wantRule: "PATH (singularity)", wantVer: "3.8.7"},
		{name: "no PATH: highest glob version", f: Finder{Search: []string{glob}},
			wantPath: v1100, wantRule: "search " + glob, wantVer: "1.10.0"},
		{name: "broken config path falls through", f: Finder{ConfigPath: notExec, Search: []string{glob}},
			wantPath: v1100, wantRule: "search " + glob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Getenv = func(k string) string { return tt.env[k] }
			rt, err := tt.f.Find(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rt.Path != tt.wantPath || rt.Rule != tt.wantRule || (tt.wantVer != "" && rt.Version != tt.wantVer) {
				t.Errorf("Find() = %+v, want %s by %q version %s", rt, tt.wantPath, tt.wantRule, tt.wantVer)
			}
		})
	}

	_, err := Finder{ConfigPath: notExec, Getenv: func(string) string { return "" }}.Find(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), notExec+": not executable") {
		t.Fatalf("Find with nothing usable: %v, want ErrNotFound naming %s", err, notExec)
	}
}
