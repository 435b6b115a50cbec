package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/cache"
)

// cacheSite is a site whose config puts the node cache under the test's root.
func cacheSite(t *testing.T) *site {
	s := newSite(t)
	testkit.Must(t, os.WriteFile(s.config, []byte("[cache]\ndir = \""+filepath.Join(s.root, "node/cache")+"\"\n"), 0o644))
	testkit.Must(t, os.MkdirAll(filepath.Join(s.root, "node"), 0o755))
	s.env["TMPDIR"] = filepath.Join(s.root, "node")
	return s
}

func TestStageCommand(t *testing.T) {
	s := cacheSite(t)
	var out struct {
		Schema string
		Cache  string
		Images []cache.Result
	}
	stage := func(args ...string) error {
		o, err := s.run(t, append([]string{"stage", "--json"}, args...)...)
		out.Images = nil
		if jerr := json.Unmarshal([]byte(o[:strings.LastIndex(o, "}")+1]), &out); jerr != nil {
			t.Fatalf("stage output: %v\n%s", jerr, o)
		}
		return err
	}
	if err := stage(s.image, "--job", "900"); err != nil {
		t.Fatal(err)
	}
	first := out.Images[0]
	if out.Schema != SchemaStage || !first.Copied || !strings.HasPrefix(first.Path, out.Cache) {
		t.Fatalf("first stage = %+v", out)
	}
	s.env["SLURM_JOB_ID"] = "901"
	missing := filepath.Join(s.root, "scratch/gone.sif")
	err := stage(s.image, missing)
	if err == nil || len(out.Images) != 2 {
		t.Fatalf("stage with a missing image = %v, %+v", err, out)
	}
	if hit := out.Images[0]; hit.Copied || hit.Path != first.Path {
		t.Errorf("second stage = %+v, want a hit", hit)
	}
	if miss := out.Images[1]; miss.Staged || miss.Path != missing || !strings.Contains(miss.Reason, "no such file") {
		t.Errorf("missing image result = %+v, want the source and a reason", miss)
	}
	var usage *UsageError
	if _, err := s.run(t, "stage", "--job", "../../etc", s.image); !errors.As(err, &usage) {
		t.Errorf("a hostile job id = %v, want a usage error", err)
	}

	o, err := s.run(t, "cache", "ls")
	if err != nil || !strings.Contains(o, "900,901") || !strings.Contains(o, "1 images in") {
		t.Errorf("cache ls = %v\n%s", err, o)
	}
	if o, err := s.run(t, "cache", "verify"); err != nil || !strings.Contains(o, "0 damaged") {
		t.Errorf("cache verify = %v\n%s", err, o)
	}
	testkit.Must(t, os.Chmod(first.Path, 0o600))
	testkit.Must(t, os.Truncate(first.Path, first.Bytes-10))
	if o, err := s.run(t, "cache", "verify"); !errors.Is(err, ErrProblemsFound) || !strings.Contains(o, "DAMAGED") {
		t.Errorf("cache verify of a truncated entry = %v\n%s", err, o)
	}
	o, err = s.run(t, "cache", "gc", "--all", "--job", "900", "--job", "901")
	if err != nil || !strings.Contains(o, "removed image") {
		t.Errorf("cache gc = %v\n%s", err, o)
	}
	if _, err := os.Stat(first.Path); !os.IsNotExist(err) {
		t.Error("gc left the entry")
	}
}
