// Package lifecycle is sifkernel's job lifecycle: the Slurm Prolog, TaskProlog
// and Epilog, activate and run for job scripts, and sweep. Root code here
// never touches what a user owns: it creates the job directory and then runs
// this binary again as the job user for everything inside it (the Epilog's
// cleanup runs in sifkernel-cleanup where that is installed, see
// childBinary).
package lifecycle

import (
	"context"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/jobclean"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/node"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Env is what the lifecycle takes from the process. Tests set every field.
type Env struct {
	Config     *config.Loaded
	ConfigFile string // passed on to children as --config; "" for the default
	// ConfigDefaults says the hook runs on the built-in config (the site's
	// is broken); its children are told to do the same.
	ConfigDefaults bool
	Log            logrus.FieldLogger
	LookupEnv      func(string) (string, bool)
	Self           string // this binary, run again as the job user
	LookupUser     func(uid int) (slurm.User, error)
	Version        string
	NodeRoot       string // where /dev and /proc are; "" means /
	Stdout         io.Writer
	Now            func() time.Time
}

func (e *Env) getenv(k string) string {
	v, _ := e.LookupEnv(k)
	return v
}

// preparedJobDir is the job directory a Prolog made and finished, if there
// is one the calling user can trust: in a verified cache root, the user's
// own, not a link (see cache.Tree.OpenOwnJobDir). A user who made /tmp's
// cache root before the hooks did cannot hand another user kernels this way.
func (e *Env) preparedJobDir(job slurm.JobID) (string, bool) {
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		return "", false
	}
	defer tree.Close()
	d, err := tree.OpenOwnJobDir(job)
	if err != nil {
		return "", false
	}
	defer d.Close()
	_, ok := cache.Prepared(d)
	return tree.JobDir(job), ok
}

// userJobDir is the job directory a user's own TaskProlog, activate or run
// made, inside the user's cache directory (a user cannot create jobs/).
func userJobDir(c *cache.Cache, job slurm.JobID) string { return cache.JobDirIn(c.Dir(), job) }

// OpenUserCache opens the calling user's part of the node cache.
func (e *Env) OpenUserCache(timeout time.Duration) (*cache.Cache, error) {
	return jobclean.OpenUserCache(e.Config.Cache, e.getenv("TMPDIR"), e.Log, timeout)
}

func (e *Env) finder() apptainer.Finder { return e.Config.Apptainer.Finder(e.getenv) }

func (e *Env) kernelEnv(home string) kernelspec.Env {
	k := kernelspec.Env{Getenv: e.getenv, LookupEnv: e.LookupEnv, Home: home}
	j, _ := kernels.ModelFor(k, e.Config) // Validate has refused a bad setting
	k.Jupyter = &j
	return k
}

func (e *Env) gpu() node.GPU {
	return node.DetectGPU(node.Env{LookupEnv: e.LookupEnv, Root: e.NodeRoot, GPUPartitions: e.Config.Node.GPUPartitions})
}

// hookLog gives the logger every line of a hook writes with: hook and job.
func (e *Env) hookLog(hook string, job slurm.JobID) logrus.FieldLogger {
	return e.Log.WithField("hook", hook).WithField("job", job)
}

// nodeName is this node's name as Slurm knows it (see slurm.NodeName).
func (e *Env) nodeName() (string, string) { return slurm.NodeName(e.getenv) }

// finished logs how long a hook took, for sites (and the soak) to watch.
func finished(log logrus.FieldLogger, start time.Time) {
	log.WithField("took_ms", time.Since(start).Milliseconds()).Info("finished")
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
