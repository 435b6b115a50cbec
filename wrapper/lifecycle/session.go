package lifecycle

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Session is the job a shell on this node belongs to, found without any
// of the job's environment: an ssh session into a running job (TACC-style
// idev, a second terminal, VS Code over ssh) runs no TaskProlog and gets no
// SLURM_JOB_ID, but the Prolog prepared the job's kernels all the same.
type Session struct {
	Job    slurm.JobID
	JobDir string
	How    string        // how the job was found, for people
	Others []slurm.JobID // other jobs of the user prepared on this node
}

// cgroupJob finds job_<id> in a /proc/<pid>/cgroup line's path, as Slurm's
// cgroup plugins name it under v1 (/slurm/uid_U/job_J/step_S) and v2
// (/system.slice/slurmstepd.scope/job_J/step_S/...); pam_slurm_adopt puts
// an ssh session into its job's cgroup.
// What follows job_ is a job id only if slurm.ParseJobID says so.
var cgroupJob = regexp.MustCompile(`(?:^|/)job_([^/]*)(?:/|$)`)

// JobFromCgroup reads a /proc/<pid>/cgroup file and returns the Slurm job
// it names, or no job.
func JobFromCgroup(r io.Reader) slurm.JobID {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			if m := cgroupJob.FindStringSubmatch(parts[2]); m != nil {
				if job, err := slurm.ParseJobID(m[1]); err == nil {
					return job
				}
			}
		}
	}
	return slurm.JobID{}
}

// FindSession finds the calling user's job on this node: SLURM_JOB_ID if
// set; else the job whose cgroup this process is in; else the jobs whose
// directories the Prolog prepared here for this user (node.json written),
// the newest if several (Others names the rest). Only job directories in a
// verified cache root, owned by the caller, count. found is false when the
// user has no prepared job here (a login node, say).
func (e *Env) FindSession() (s Session, found bool) {
	if job, err := slurm.ParseJobID(slurm.EnvJobID(e.getenv)); err == nil {
		if dir, ok := e.preparedJobDir(job); ok {
			return Session{Job: job, JobDir: dir, How: slurm.VarJobID}, true
		}
	}
	if f, err := fsx.OpenRegular(filepath.Join(e.NodeRoot, "/proc/self/cgroup"), false); err == nil {
		job := JobFromCgroup(f)
		f.Close()
		if dir, ok := e.preparedJobDir(job); !job.IsZero() && ok {
			return Session{Job: job, JobDir: dir, How: "this session's cgroup (job_" + job.String() + ")"}, true
		}
	}
	return e.newestPreparedJob()
}

// newestPreparedJob picks among the caller's prepared job directories.
func (e *Env) newestPreparedJob() (Session, bool) {
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		return Session{}, false
	}
	defer tree.Close()
	names, _ := tree.Jobs()
	type job struct {
		id    slurm.JobID
		ready time.Time
	}
	var mine []job
	for _, n := range names {
		id, err := slurm.ParseJobID(n)
		if len(mine) >= 1000 || err != nil {
			continue
		}
		d, err := tree.OpenOwnJobDir(id)
		if err != nil {
			continue
		}
		at, ok := cache.Prepared(d)
		d.Close()
		if ok {
			mine = append(mine, job{id, at})
		}
	}
	if len(mine) == 0 {
		return Session{}, false
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].ready.After(mine[j].ready) })
	s := Session{Job: mine[0].id, JobDir: tree.JobDir(mine[0].id), How: "your only job prepared on this node"}
	for _, j := range mine[1:] {
		s.Others = append(s.Others, j.id)
	}
	if len(s.Others) > 0 {
		s.How = fmt.Sprintf("the newest of your %d jobs prepared on this node", len(mine))
	}
	return s, true
}

// SessionExports are the variables the session gets: the TaskProlog's.
func (e *Env) SessionExports(s Session) Exports { return e.exports(s.JobDir) }
