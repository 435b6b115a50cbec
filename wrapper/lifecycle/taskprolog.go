package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// Exports are the variables a job gets.
type Exports struct {
	JupyterPath string // <job dir>/jupyter, then what JUPYTER_PATH held
	JobDir      string
}

// Vars are the exports as name/value pairs, in the order they are set: the
// one list the TaskProlog, activate and run take them from.
func (ex Exports) Vars() [][2]string {
	return [][2]string{{"JUPYTER_PATH", ex.JupyterPath}, {"SIFKERNEL_JOB_DIR", ex.JobDir}}
}

// TaskProlog runs as the job user for every task. If the Prolog prepared
// the job it only prints the exports (two stats); if no Prolog ran, it does
// the user part itself within taskprolog.budget, once per job on the node.
// It never fails the task.
func (e *Env) TaskProlog(ctx context.Context) error {
	hc, err := slurm.FromEnv(e.LookupEnv)
	log := e.hookLog(slurm.TaskProlog, hc.JobID)
	defer func(start time.Time) { // debug: it runs for every task
		log.WithField("took_ms", time.Since(start).Milliseconds()).Debug("finished")
	}(time.Now())
	if err != nil {
		log.Errorf("not a job this TaskProlog can act on: %v; doing nothing", err)
		return nil
	}
	ex, err := e.prepare(ctx, hc.JobID, slurm.TaskProlog, e.Config.TaskProlog.Budget.Duration)
	if err != nil {
		log.Errorf("no job kernels: %s", untrusted.String(err.Error()))
		return nil
	}
	out := slurm.TaskOutput{W: e.Stdout}
	for _, kv := range ex.Vars() {
		if err := out.Export(kv[0], kv[1]); err != nil {
			log.Errorf("%v", err)
		}
	}
	return nil
}

// prepare finds the job directory a Prolog made, or makes the user's own and
// runs the user part in it (once: concurrent tasks wait on a lock).
func (e *Env) prepare(ctx context.Context, job slurm.JobID, createdBy string, budget time.Duration) (Exports, error) {
	if dir, ok := e.preparedJobDir(job); ok {
		return e.exports(dir), nil
	}
	ch, err := e.OpenUserCache(budget)
	if err != nil {
		return Exports{}, err
	}
	dir := userJobDir(ch, job)
	if cache.PreparedPath(dir) {
		return e.exports(dir), nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return Exports{}, err
	}
	lock := cache.NewLock(dir + ".lock")
	defer lock.Close()
	lctx, cancel := withTimeout(ctx, budget)
	defer cancel()
	if ok, err := lock.TryLockContext(lctx, 20*time.Millisecond); !ok {
		return Exports{}, fmt.Errorf("waiting for another task to prepare the job: %w", errors.Join(err, lctx.Err()))
	}
	if cache.PreparedPath(dir) {
		return e.exports(dir), nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return Exports{}, err
	}
	home := e.getenv("HOME")
	if _, err := e.UserPart(lctx, UserPartOptions{Job: job, JobDir: dir, Home: home, Stage: true, Budget: budget, CreatedBy: createdBy}); err != nil {
		return Exports{}, err
	}
	return e.exports(dir), nil
}

func (e *Env) exports(dir string) Exports {
	jp := filepath.Join(dir, cache.JobJupyter)
	prev := e.getenv("JUPYTER_PATH")
	parts := []string{jp}
	for _, p := range filepath.SplitList(prev) {
		if p != "" && p != jp {
			parts = append(parts, p)
		}
	}
	return Exports{JupyterPath: strings.Join(parts, string(os.PathListSeparator)), JobDir: dir}
}
