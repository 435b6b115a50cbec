package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
)

// jobWithKernel lays out a prepared job directory (node.json, the job's
// copy of a kernel "k") and returns it.
func jobWithKernel(t *testing.T, root string) string {
	job := filepath.Join(root, "job")
	k := filepath.Join(job, "jupyter/kernels/k")
	testkit.Must(t, os.MkdirAll(k, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(job, "node.json"), []byte("{}"), 0o644))
	testkit.Must(t, os.WriteFile(filepath.Join(k, "kernel.json"), []byte(`{"argv": ["python3", "-c", "pass", "{connection_file}"], "display_name": "the job's", "language": "python"}`), 0o644))
	return job
}

// TestJobPath: node and kernel check, inside a job whose launcher set
// JUPYTER_PATH outright, say the job's kernels are lost and what to change
// (and count a warning), or, where sifkernel's Jupyter base config is on
// Jupyter's config path, that it puts them back.
func TestJobPath(t *testing.T) {
	s := newSite(t)
	job := jobWithKernel(t, s.root)
	s.env["SIFKERNEL_JOB_DIR"] = job
	system := "" // a base config this machine already has (the test cluster installs one)
	for _, d := range []string{"/usr/local/etc/jupyter", "/etc/jupyter"} {
		if data, err := os.ReadFile(filepath.Join(d, "jupyter_config.py")); err == nil && strings.Contains(string(data), lifecycle.HookMark) {
			system = filepath.Join(d, "jupyter_config.py")
			break
		}
	}
	s.env["JUPYTER_PATH"] = filepath.Join(job, "jupyter") + ":/opt/other"
	if out, _ := s.run(t, "node"); !strings.Contains(out, "job kernels: JUPYTER_PATH starts with the job's kernels") {
		t.Errorf("node, JUPYTER_PATH as the TaskProlog set it:\n%s", out)
	}
	s.env["JUPYTER_PATH"] = filepath.Join(s.home, "share/jupyter") + ":/opt/osc/jupyter" // as OSC's app sets it
	out, _ := s.run(t, "node")
	if system == "" && !strings.Contains(out, "job kernels: warning: JUPYTER_PATH lost the job's kernels") {
		t.Errorf("node, JUPYTER_PATH overwritten, no base config:\n%s", out)
	}
	if system != "" && !strings.Contains(out, system+" puts them first") {
		t.Errorf("node, JUPYTER_PATH overwritten, %s installed:\n%s", system, out)
	}
	if system == "" {
		out, _ := s.run(t, "kernel", "check")
		if !strings.Contains(out, "warning: JUPYTER_PATH lost the job's kernels") || !strings.Contains(out, "$SIFKERNEL_JOB_DIR/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}") {
			t.Errorf("kernel check does not say the job's kernels are lost, or what to change:\n%s", out)
		}
	}
	cfg := filepath.Join(s.root, "jupyter-config")
	testkit.Must(t, os.MkdirAll(cfg, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(cfg, "jupyter_config.py"), testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "slurm/jupyter/jupyter_config.py")), 0o644))
	s.env["JUPYTER_CONFIG_PATH"] = cfg
	out, _ = s.run(t, "node", "--json")
	var got struct {
		JobPath lifecycle.JobPath `json:"job_path"`
	}
	testkit.Must(t, json.Unmarshal([]byte(out), &got))
	if got.JobPath.Warning || got.JobPath.First || got.JobPath.Hook != filepath.Join(cfg, "jupyter_config.py") {
		t.Errorf("node --json with the base config on JUPYTER_CONFIG_PATH: %+v", got.JobPath)
	}
}

// TestJupyterBaseConfig: with sifkernel's Jupyter base config on the config
// path, a real Jupyter application (Debian's `jupyter kernelspec list`)
// inside a job whose JUPYTER_PATH a launcher set outright lists the job's
// copy of a kernel before the user's own of the same name; outside a job
// the user's own, and the environment unchanged.
func TestJupyterBaseConfig(t *testing.T) {
	requireJupyter(t)
	root := t.TempDir()
	job := jobWithKernel(t, root)
	home := filepath.Join(root, "home")
	own := filepath.Join(home, ".local/share/jupyter/kernels/k")
	testkit.Must(t, os.MkdirAll(own, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(own, "kernel.json"), []byte(`{"argv": ["python3", "{connection_file}"], "display_name": "mine", "language": "python"}`), 0o644))
	cfg := filepath.Join(root, "cfg")
	testkit.Must(t, os.MkdirAll(cfg, 0o755))
	testkit.Must(t, os.WriteFile(filepath.Join(cfg, "jupyter_config.py"), testkit.ReadFile(t, filepath.Join(testkit.RepoRoot(), "slurm/jupyter/jupyter_config.py")), 0o644))
	list := func(env ...string) string {
		cmd := exec.Command("/usr/bin/jupyter", "kernelspec", "list", "--json")
		cmd.Env = append([]string{"HOME=" + home, "PATH=/usr/bin:/bin", "JUPYTER_CONFIG_PATH=" + cfg, "JUPYTER_PATH=" + filepath.Join(home, "share/jupyter")}, env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("jupyter kernelspec list: %v\n%s", err, out)
		}
		var specs struct {
			Kernelspecs map[string]struct {
				ResourceDir string `json:"resource_dir"`
			} `json:"kernelspecs"`
		}
		testkit.Must(t, json.Unmarshal(out, &specs))
		return specs.Kernelspecs["k"].ResourceDir
	}
	if got := list("SIFKERNEL_JOB_DIR=" + job); got != filepath.Join(job, "jupyter/kernels/k") {
		t.Errorf("in a job, Jupyter lists k from %q, not the job's copy", got)
	}
	if got := list(); got != own {
		t.Errorf("outside a job, Jupyter lists k from %q, not the user's own %s", got, own)
	}
	testkit.Must(t, os.Remove(filepath.Join(job, "node.json"))) // a job directory the Prolog did not finish
	if got := list("SIFKERNEL_JOB_DIR=" + job); got != own {
		t.Errorf("with no node.json, Jupyter lists k from %q, not the user's own", got)
	}
}
