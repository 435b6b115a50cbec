package lifecycle

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// JobPath says whether a Jupyter started from this environment finds the
// job's kernels first: launchers that set JUPYTER_PATH outright (OSC's
// Open OnDemand Jupyter app does) drop the job's directory, and Jupyter
// then offers the user's own kernel.json (the image in place, no --nv).
// The Jupyter base config sifkernel installs (slurm/jupyter) puts it back
// when Jupyter starts; without it, `node` and `kernel check` say what to
// change.
type JobPath struct {
	JobDir string `json:"job_dir,omitempty"`
	// First: JUPYTER_PATH starts with the job's kernels.
	First bool `json:"first"`
	// Hook is the Jupyter base config that puts them first when Jupyter
	// starts, where one is installed.
	Hook    string `json:"hook,omitempty"`
	Warning bool   `json:"warning"`
	Says    string `json:"says"`
}

// HookMark is what the base config sifkernel installs says, by which
// JobPath knows it.
const HookMark = "SIFKERNEL_JOB_DIR"

// JobPath looks at this environment (see JobPath the type); home is the
// user's, for ~/.jupyter.
func (e *Env) JobPath(home string) JobPath {
	dir := e.getenv("SIFKERNEL_JOB_DIR")
	if dir == "" {
		if job, err := slurm.ParseJobID(slurm.EnvJobID(e.getenv)); err == nil {
			if d, ok := e.preparedJobDir(job); ok {
				return JobPath{JobDir: d, Warning: true, Says: fmt.Sprintf("job %s's kernels are in %s, but this shell has not loaded them: "+
					"eval \"$(sifkernel env)\" (sh; --shell csh for csh)", job, d)}
			}
		}
		return JobPath{Says: "not in a job whose kernels sifkernel prepared"}
	}
	kernels := filepath.Join(dir, cache.JobJupyter)
	p := JobPath{JobDir: dir, Hook: jupyterHook(e.getenv, home)}
	first, _, _ := strings.Cut(e.getenv("JUPYTER_PATH"), string(filepath.ListSeparator))
	p.First = filepath.Clean(first) == kernels
	switch {
	case p.First:
		p.Says = "JUPYTER_PATH starts with the job's kernels (" + kernels + ")"
	case p.Hook != "":
		p.Says = fmt.Sprintf("JUPYTER_PATH does not start with the job's kernels (did a launcher set it?); %s puts them first when Jupyter starts", p.Hook)
	default:
		p.Warning = true
		p.Says = fmt.Sprintf("JUPYTER_PATH lost the job's kernels (%s): Jupyter will offer your own kernel.json instead (image in place, no --nv). "+
			"After whatever sets JUPYTER_PATH, add: export JUPYTER_PATH=\"$SIFKERNEL_JOB_DIR/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}\" "+
			"(or ask your admins to install sifkernel's /etc/jupyter/jupyter_config.py)", kernels)
	}
	return p
}

// jupyterHook is the first jupyter_config.py on Jupyter's config path that
// is sifkernel's (or holds it): ~/.jupyter (JUPYTER_CONFIG_DIR),
// JUPYTER_CONFIG_PATH, then the system directories every Jupyter reads.
func jupyterHook(getenv func(string) string, home string) string {
	var dirs []string
	if d := getenv("JUPYTER_CONFIG_DIR"); d != "" {
		dirs = append(dirs, d)
	} else if home != "" {
		dirs = append(dirs, filepath.Join(home, ".jupyter"))
	}
	dirs = append(dirs, filepath.SplitList(getenv("JUPYTER_CONFIG_PATH"))...)
	dirs = append(dirs, "/usr/local/etc/jupyter", "/etc/jupyter")
	for _, d := range dirs {
		if d == "" {
			continue
		}
		f := filepath.Join(d, "jupyter_config.py")
		data, err := fsx.ReadRegular(f, 1<<20, false)
		if err == nil && bytes.Contains(data, []byte(HookMark)) {
			return f
		}
	}
	return ""
}
