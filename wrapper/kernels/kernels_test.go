package kernels

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// user is a home with an Apptainer and a real SIF image, as `kernel ...`
// sees it; the tests read what the functions return, not printed text.
func user(t *testing.T) (*User, string, string) {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "home/alice")
	rt := filepath.Join(root, "opt/apps/tacc-apptainer/1.4.1/bin/apptainer")
	image := filepath.Join(root, "scratch/bert.sif")
	for _, d := range []string{home, filepath.Dir(rt), filepath.Dir(image)} {
		testkit.Must(t, os.MkdirAll(d, 0o755))
	}
	testkit.Must(t, os.WriteFile(rt, []byte("#!/bin/sh\necho apptainer version 1.4.1\n"), 0o755))
	testkit.Must(t, sifimage.Build(image, bytes.NewReader(sifimage.Minimal)))
	cfg := config.Defaults()
	cfg.Apptainer.Path = rt
	env := map[string]string{"JUPYTER_RUNTIME_DIR": filepath.Join(home, ".local/share/jupyter/runtime"), "PATH": "/usr/bin:/bin"}
	log := logrus.New()
	log.SetOutput(&bytes.Buffer{})
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	return &User{Config: cfg, Getenv: func(k string) string { return env[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Home:      home, Log: log, Stderr: &bytes.Buffer{}, Now: func() time.Time { return now }, Version: "test"}, rt, image
}

func TestAddSelectCheckRemove(t *testing.T) {
	u, rt, image := user(t)
	ctx := context.Background()
	a, err := u.Add(ctx, AddOptions{Name: "bert", Image: image, Language: "python", GPU: kernelspec.GPUAuto})
	testkit.Must(t, err)
	if want := filepath.Join(u.Home, ".local/share/jupyter/kernels/bert/kernel.json"); a.File != want || a.Backup != "" || a.DisplayName == "" {
		t.Errorf("Add = %+v, want %s, no backup", a, want)
	}
	entries, err := u.Select([]string{"bert"})
	testkit.Must(t, err)
	if len(entries) != 1 || entries[0].Spec.Argv[0] != rt || !slices.Contains(entries[0].Spec.Argv, image) {
		t.Fatalf("Select = %+v", entries)
	}
	if c := CheckAll(u.Checker(ctx), entries); c.Errors != 0 || c.Warnings != 0 {
		t.Errorf("a kernel add made has %d errors, %d warnings: %v", c.Errors, c.Warnings, c.Findings)
	}
	if _, err := u.Add(ctx, AddOptions{Name: "bert", Image: image, Language: "python", GPU: kernelspec.GPUAuto}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Add over an existing kernel without force = %v", err)
	}
	again, err := u.Add(ctx, AddOptions{Name: "bert", Image: image, Language: "python", GPU: kernelspec.GPUNever, Force: true})
	testkit.Must(t, err)
	if again.File != a.File {
		t.Errorf("Add --force wrote %s", again.File)
	}
	if again.Backup == "" || bytes.Equal(testkit.ReadFile(t, again.Backup), testkit.ReadFile(t, a.File)) {
		t.Errorf("Add --force kept no backup of the old kernel, or did not replace it: %+v", again)
	}
	if _, err := u.Add(ctx, AddOptions{Name: "../x", Image: image, GPU: kernelspec.GPUAuto}); !errors.Is(err, ErrUsage) {
		t.Errorf("Add ../x = %v, want a usage error", err)
	}
	r, err := u.Remove("bert", "")
	testkit.Must(t, err)
	if r.Link || r.Path != filepath.Dir(a.File) {
		t.Errorf("Remove = %+v", r)
	}
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s", r.Path)
	}
}

// TestRemoveLinkKeepsTarget: a kernel directory that is a link loses the
// link only.
func TestRemoveLinkKeepsTarget(t *testing.T) {
	u, rt, image := user(t)
	target := filepath.Join(t.TempDir(), "shared-kernel")
	testkit.Must(t, os.MkdirAll(target, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(target, "kernel.json"), []byte(`{"argv":["`+rt+`","exec","`+image+`","python3","-f","{connection_file}"]}`), 0o644))
	kernels := filepath.Join(u.Home, ".local/share/jupyter/kernels")
	testkit.Must(t, os.MkdirAll(kernels, 0o755))
	testkit.Must(t, os.Symlink(target, filepath.Join(kernels, "shared")))
	r, err := u.Remove("shared", "")
	testkit.Must(t, err)
	if !r.Link {
		t.Errorf("Remove of a linked kernel = %+v, want Link", r)
	}
	if _, err := os.Stat(filepath.Join(target, "kernel.json")); err != nil {
		t.Errorf("the link's target lost its kernel.json: %v", err)
	}
	testkit.Must(t, os.MkdirAll(filepath.Join(kernels, "notakernel"), 0o755))
	if _, err := u.Remove("notakernel", ""); err == nil {
		t.Error("Remove of a directory without kernel.json succeeded")
	}
}

// TestFixReturnsWhatItDid: a TACC-style kernel, fixed, reports its changes
// and backup through the callback; a second fix finds nothing.
func TestFixReturnsWhatItDid(t *testing.T) {
	u, _, image := user(t)
	dir := filepath.Join(u.Home, ".local/share/jupyter/kernels/tacc")
	testkit.Must(t, os.MkdirAll(dir, 0o755))
	orig := []byte(`{"argv": ["/opt/apps/tacc-apptainer/1.3.3/bin/apptainer", "exec", "--nv", "` + image + `", "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "T", "language": "python"}`)
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "kernel.json"), orig, 0o644))
	var got []Fixed
	n, err := u.Fix(context.Background(), FixOptions{}, func(f Fixed) { got = append(got, f) })
	testkit.Must(t, err)
	if n != 1 || len(got) != 1 || len(got[0].Changes) != 2 || got[0].Backup == "" || got[0].Diff == "" {
		t.Fatalf("Fix = %d, %+v; want one kernel, two changes (argv[0], --nv; the runtime dir is in the home Apptainer binds), a backup", n, got)
	}
	if !bytes.Equal(testkit.ReadFile(t, got[0].Backup), orig) {
		t.Error("the backup is not the original")
	}
	got = nil
	n, err = u.Fix(context.Background(), FixOptions{Names: []string{"tacc"}}, func(f Fixed) { got = append(got, f) })
	if err != nil || n != 0 || len(got) != 1 || !got[0].Nothing {
		t.Errorf("a second fix = %d, %v, %+v; want nothing to do", n, err, got)
	}
}
