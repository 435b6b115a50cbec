package cache

import (
	"os"
	"path/filepath"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// The node cache's layout below a directory of its own (users/<uid> or a
// user's private cache), spelled here alone: the lifecycle, the sweep and
// the cleanup ask these instead of writing the names.
const (
	// JobsDir holds one directory per job, jobs/<id>.
	JobsDir = "jobs"
	// RefsDir holds refs/<key>/<job>: which jobs use an entry.
	RefsDir = "refs"
	// JobReport is the user part's report in a job directory, written
	// last: a job directory is prepared when it holds one.
	JobReport = "node.json"
	// JobJupyter is the job directory's entry for JUPYTER_PATH; the job's
	// kernels are in its kernels/.
	JobJupyter = "jupyter"
)

// JobDirIn is job's directory in the cache directory dir.
func JobDirIn(dir string, job slurm.JobID) string {
	return filepath.Join(dir, JobsDir, job.String())
}

// JobKernels is where a job directory's kernels are.
func JobKernels(jobDir string) string { return filepath.Join(jobDir, JobJupyter, "kernels") }

// Prepared says whether the job directory open as d holds its report (a
// regular file, not a link): the user part finished there. at is the
// report's modification time.
func Prepared(d *os.Root) (at time.Time, ok bool) {
	st, err := d.Lstat(JobReport)
	if err != nil || !st.Mode().IsRegular() {
		return time.Time{}, false
	}
	return st.ModTime(), true
}

// PreparedPath is Prepared for a job directory of the caller's own, by path.
func PreparedPath(jobDir string) bool {
	st, err := os.Lstat(filepath.Join(jobDir, JobReport))
	return err == nil && st.Mode().IsRegular()
}
