package lifecycle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// TestProfileSnippets runs slurm/profile.d's two snippets, as a login shell
// sources them, in sh and tcsh, with a stand-in sifkernel that records
// what it was asked, and checks both do the same in each case: activate
// when `sifkernel idev` started the shell, `env` wherever the node has job
// directories (an ssh session that pam_slurm_adopt gave SLURM_JOB_ID alone
// included: the csh snippet used to require it unset), nothing when the
// job's kernels are already set up or the node has no jobs.
func TestProfileSnippets(t *testing.T) {
	tcsh, err := exec.LookPath("tcsh")
	if err != nil {
		testkit.Skip(t, "tcsh is needed for the csh snippet (Debian's tcsh)")
	}
	base := t.TempDir()
	jobs := filepath.Join(base, "jobs")
	testkit.Must(t, os.Mkdir(jobs, 0o755))
	bin := filepath.Join(base, "bin")
	testkit.Must(t, os.Mkdir(bin, 0o755))
	calls := filepath.Join(base, "calls")
	testkit.Must(t, os.WriteFile(filepath.Join(bin, "sifkernel"), []byte("#!/bin/sh\necho \"$*\" >>"+calls+"\n"), 0o755))
	snippet := func(name string) string {
		data := testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "slurm/profile.d", name))
		p := filepath.Join(base, name)
		testkit.Must(t, os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "/tmp/sifkernel/jobs", jobs)), 0o644))
		return p
	}
	shells := map[string][]string{
		"sh":  {"/bin/sh", "-c", ". " + snippet("sifkernel.sh")},
		"csh": {tcsh, "-f", "-c", "source " + snippet("sifkernel.csh")},
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"ssh with pam_slurm_adopt (SLURM_JOB_ID alone)", []string{"SLURM_JOB_ID=42"}, "env --quiet --shell SHELL"},
		{"ssh without it", nil, "env --quiet --shell SHELL"},
		{"started by sifkernel idev", []string{"SLURM_JOB_ID=42", "SIFKERNEL_AUTO=1"}, "activate --shell SHELL"},
		{"SIFKERNEL_AUTO not 1", []string{"SLURM_JOB_ID=42", "SIFKERNEL_AUTO=0"}, "env --quiet --shell SHELL"},
		{"the job's kernels are set up", []string{"SLURM_JOB_ID=42", "SIFKERNEL_JOB_DIR=/x"}, ""},
	}
	for shell, argv := range shells {
		for _, tt := range tests {
			_ = os.Remove(calls)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append([]string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + base}, tt.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s, %s: %v\n%s", shell, tt.name, err, out)
				continue
			}
			got := testkit.ReadOptional(t, calls)
			if want := strings.ReplaceAll(tt.want, "SHELL", shell); strings.TrimSpace(string(got)) != want {
				t.Errorf("%s, %s: sifkernel was run with %q, want %q", shell, tt.name, strings.TrimSpace(string(got)), want)
			}
		}
	}
	testkit.Must(t, os.Remove(jobs))
	_ = os.Remove(calls)
	for shell, argv := range shells {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + base, "SLURM_JOB_ID=42"}
		testkit.Must(t, cmd.Run())
		if got, err := os.ReadFile(calls); err == nil {
			t.Errorf("%s on a node with no job directories ran sifkernel %q", shell, got)
		}
	}
}
