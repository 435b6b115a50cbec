package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/jobclean"
)

// TestEpilogRunsTheCleaner: the Epilog's cleanup child is sifkernel-cleanup
// where make install puts it (PREFIX/libexec/sifkernel) or beside sifkernel
// (a build tree), and sifkernel itself where there is none or where the one
// there is not root's alone; the job's files and refs go in every case, and
// by the child (root's own removal is only for what a child left).
func TestEpilogRunsTheCleaner(t *testing.T) {
	real := filepath.Join(filepath.Dir(binary), CleanerName)
	for _, tc := range []struct {
		name  string
		place string // where the cleaner is, under the prefix; "" for none
		mode  os.FileMode
		owner int
		used  bool
		warn  string
	}{
		{name: "installed", place: "libexec/sifkernel", mode: 0o755, used: true},
		{name: "beside sifkernel", place: "bin", mode: 0o755, used: true},
		{name: "none", place: ""},
		{name: "group may write it", place: "libexec/sifkernel", mode: 0o775, warn: "group or others may write"},
		{name: "a user's", place: "bin", mode: 0o755, owner: uid, warn: "owned by uid 1234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			prefix := filepath.Join(s.base, "prefix")
			self := filepath.Join(prefix, "bin", "sifkernel")
			testkit.Must(t, os.MkdirAll(filepath.Dir(self), 0o755))
			testkit.Must(t, os.WriteFile(self, testkit.ReadFile(t, binary), 0o755))
			// The cleaner is a script that notes who ran it and runs the
			// real one, so the test sees which program the Epilog started.
			marker := filepath.Join(s.base, "cleaner-ran")
			testkit.Must(t, os.WriteFile(marker, nil, 0o666))
			testkit.Must(t, os.Chmod(marker, 0o666))
			if tc.place != "" {
				p := filepath.Join(prefix, tc.place, CleanerName)
				testkit.Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
				script := fmt.Sprintf("#!/bin/sh\nid -u >>%s\nexec %s \"$@\"\n", marker, real)
				testkit.Must(t, os.WriteFile(p, []byte(script), tc.mode))
				testkit.Must(t, os.Chmod(p, tc.mode))
				testkit.Must(t, os.Chown(p, tc.owner, tc.owner))
			}
			lc := s.lc(t)
			lc.Self = self
			testkit.Must(t, lc.Prolog(context.Background()))
			if _, err := os.Stat(s.jobDir("4242")); err != nil {
				t.Fatalf("the Prolog made no job directory: %v\n%s", err, s.log.String())
			}
			lc = s.lc(t)
			lc.Self = self
			testkit.Must(t, lc.Epilog(context.Background()))
			ran := strings.TrimSpace(string(testkit.ReadFile(t, marker)))
			switch {
			case tc.used && ran != fmt.Sprint(uid):
				t.Errorf("the cleaner ran as %q; want it run once, as uid %d", ran, uid)
			case !tc.used && ran != "":
				t.Errorf("the cleaner ran (as %q); want sifkernel to clean up", ran)
			}
			log := s.log.String()
			if tc.warn != "" && !strings.Contains(log, tc.warn) {
				t.Errorf("the log does not say why the cleaner was not used (%q):\n%s", tc.warn, log)
			}
			if strings.Contains(log, "cleanup as uid") {
				t.Errorf("the cleanup child failed:\n%s", log)
			}
			if _, err := os.Lstat(s.jobDir("4242")); err == nil {
				t.Error("the job directory is still there")
			}
			refs, _ := filepath.Glob(filepath.Join(s.cacheDir, "users", fmt.Sprint(uid), "refs", "*", "4242"))
			if len(refs) != 0 {
				t.Errorf("the job's refs are still there: %v", refs)
			}
		})
	}
}

// TestCleanerTakesWhatRootSends: a cleanup request as root's hooks write
// it (ChildRequest.Args) is one sifkernel-cleanup's parser takes, and it
// refuses what they would not write.
func TestCleanerTakesWhatRootSends(t *testing.T) {
	want := CleanupOptions{Job: jid("42"), RootJobDir: true, GC: true}
	args, err := ChildRequest{Cleanup: &want}.Args()
	testkit.Must(t, err)
	if args[0] != ChildCommand {
		t.Fatalf("args = %q", args)
	}
	got, err := jobclean.ParseRequest(args[1:])
	if err != nil || got != want {
		t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", args[1:], got, err, want)
	}
	for _, bad := range [][]string{
		{jobclean.Kind, `{"cleanup":{"job":"42"},"sweep":{}}`},
		{jobclean.Kind, `{"cleanup":{"job":"42","extra":1}}`},
		{jobclean.Kind, `{"cleanup":{"job":"42"}} {}`},
		{jobclean.Kind, `{}`},
		{"user-sweep", `{"cleanup":{"job":"42"}}`},
		{jobclean.Kind},
	} {
		if _, err := jobclean.ParseRequest(bad); err == nil {
			t.Errorf("ParseRequest(%q) took it", bad)
		}
	}
}
