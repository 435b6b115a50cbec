package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestDemo checks what the demo did, not what it printed: the job's kernel
// runs the staged copy with --nv (the demo node has GPU 0), the cache held
// that copy for job 1001 while the job ran, the cleanup removed the job
// directory and its refs and kept the copy (keep_warm), and the user's
// kernel.json is as kernel add wrote it.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	log := logrus.New()
	log.SetOutput(&bytes.Buffer{})
	res, err := Run(context.Background(), Options{Stdout: &out, Log: log, Version: "test"})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if len(res.Report.Kernels) != 1 || !res.Report.Kernels[0].Staged || !res.Report.Kernels[0].Copied || !res.Report.GPU.Present {
		t.Fatalf("report = %+v", res.Report)
	}
	argv := res.JobKernel.Argv
	staged := res.Report.Kernels[0].Image
	if !slices.Contains(argv, "--nv") || !slices.Contains(argv, staged) || slices.Contains(argv, res.Image) || staged == res.Image {
		t.Errorf("the job's kernel %q: want --nv and the staged copy %s, not %s", argv, staged, res.Image)
	}
	if len(res.Cached) != 1 || !slices.Equal(res.Cached[0].Refs, []string{"1001"}) || !strings.HasSuffix(res.Cached[0].Source, filepath.Base(res.Image)) {
		t.Errorf("the cache during the job: %+v", res.Cached)
	}
	if !res.JobDirGone || res.CachedAfter != 1 || res.RefsAfter != 0 || !res.UserKernelSame {
		t.Errorf("after the cleanup: job dir gone %v, %d entries (want 1, kept), %d refs, user's kernel unchanged %v", res.JobDirGone, res.CachedAfter, res.RefsAfter, res.UserKernelSame)
	}
	if res.JobKernel.Metadata["sifkernel"] == nil || res.JobKernel.DisplayName != "PyTorch (demo)" {
		t.Errorf("the job's kernel lost what kernel add wrote: %+v", res.JobKernel)
	}
	if _, err := os.Stat(res.Image); err == nil {
		t.Errorf("the demo left its directory behind: %s", res.Image)
	}
}
