// Package jobclean is the job user's side of an Epilog (and of `run`):
// empty the job directory, release the job's refs, evict what keep_warm
// allows and reap processes left holding evicted images. Root runs it as
// the job user, in sifkernel-cleanup (wrapper/cmd/sifkernel-cleanup) where
// that is installed beside sifkernel, else as `sifkernel internal
// user-cleanup`. It imports only what that work needs, so the small
// binary starts in a fraction of sifkernel's time: the Epilog pays one
// full start (its own) and this one.
package jobclean

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Options say what a user-side cleanup removes.
type Options struct {
	Job        slurm.JobID `json:"job"`
	RootJobDir bool        `json:"root_job_dir"` // a Prolog made jobs/<job>: empty it (root removes it)
	GC         bool        `json:"gc"`           // evict unreferenced entries past keep_warm
}

// Kind is a cleanup request's kind, as it shows in `ps` on a node.
const Kind = "user-cleanup"

// DefaultsEnv, set to "1" in a hook child's environment, says the hook
// runs on the built-in config (the site's is broken), and so must the
// child (lifecycle.ChildDefaultsEnv is this name).
const DefaultsEnv = "SIFKERNEL_CONFIG_DEFAULTS"

// Budget bounds how long the user's side of a cleanup removes; the hook
// gives the child a little more, then removes the rest itself.
const Budget = 20 * time.Second

// Env is what a cleanup works with.
type Env struct {
	Cache   config.Cache // the site's [cache]: a cleanup never reads the user's config
	Now     func() time.Time
	Log     logrus.FieldLogger
	TempDir string // the user's TMPDIR, the cache's fallback (see cache.Options)
}

// OpenUserCache opens the calling user's part of the node cache; a
// timeout of 0 is cache.stage_timeout.
func OpenUserCache(cc config.Cache, tempDir string, log logrus.FieldLogger, timeout time.Duration) (*cache.Cache, error) {
	if timeout <= 0 {
		timeout = cc.StageTimeout.Duration
	}
	return cache.Open(cache.Options{
		Root: cc.Dir, Quota: cc.UserQuota, Reserve: cc.Reserve, KeepWarm: cc.KeepWarm.Duration,
		StageTimeout: timeout, Verify: cc.Verify, Streams: cc.Streams(), FallbackDir: tempDir, Log: log,
	})
}

// Run removes the contents of the job directory (and the user's own job
// directory for the job), releases the job's refs, and collects garbage.
// It runs as the job user and checks before it removes: the job id, the
// cache root (root's alone, see cache.OpenTree) and that the job
// directory is its own. It removes through descriptors, never following a
// symbolic link, and reports what it could not remove.
func Run(e Env, o Options) error {
	if o.Job.IsZero() {
		return errors.New("cleanup: no job")
	}
	var errs []error
	if o.RootJobDir {
		errs = append(errs, EmptyRootJobDir(e.Cache.Dir, o.Job))
	}
	ch, err := OpenUserCache(e.Cache, e.TempDir, e.Log, 0)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, RemoveJobFiles(ch.Dir(), o.Job))
	errs = append(errs, ch.Release(o.Job))
	if o.GC {
		_, err := ch.GC(cache.GCOptions{Now: e.Now()})
		errs = append(errs, err)
		if n := reapHolders(ch.Dir(), cache.SiteDir(e.Cache.Dir)); n > 0 {
			e.Log.WithField("job", o.Job).Warnf("killed %d leftover processes of ended jobs holding evicted images open (orphaned squashfuse?)", n)
		}
	}
	return errors.Join(errs...)
}

// EmptyRootJobDir removes what is inside jobs/<job> of the cache root
// cacheDir, which must be the calling user's directory in a verified
// cache root.
func EmptyRootJobDir(cacheDir string, job slurm.JobID) error {
	tree, err := cache.OpenTree(cacheDir, false)
	if err != nil {
		return err
	}
	defer tree.Close()
	err = tree.EmptyOwnJobDir(job, time.Now().Add(Budget))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// RemoveJobFiles removes jobs/<job> and jobs/<job>.lock in the user's
// cache directory dir (see fsx.RemoveTree: no link followed, no mount
// crossed, any depth, the owner's bits put right). Missing ones are fine.
func RemoveJobFiles(dir string, jobs ...slurm.JobID) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	jd, _, err := fsx.OpenDirAt(d, cache.JobsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer jd.Close()
	opts := fsx.RemoveOptions{Deadline: time.Now().Add(Budget)}
	var errs []error
	for _, j := range jobs {
		errs = append(errs, fsx.RemoveTree(jd, j.String(), opts), fsx.RemoveTree(jd, j.String()+".lock", opts))
	}
	return errors.Join(errs...)
}

// Request is the JSON of a cleanup request, as the hooks' child protocol
// (lifecycle.ChildRequest) writes it: {"cleanup": {...}}.
type Request struct {
	Cleanup *Options `json:"cleanup"`
}

// ParseRequest decodes what follows `internal` in a child's argv when the
// kind is Kind: the kind and the request's JSON. It refuses what root's
// hooks would not have written: unknown fields, data after the request,
// a request with no cleanup in it.
func ParseRequest(args []string) (Options, error) {
	if len(args) != 2 || args[0] != Kind {
		return Options{}, fmt.Errorf("takes %s REQUEST, not %q", Kind, args)
	}
	var r Request
	d := json.NewDecoder(bytes.NewReader([]byte(args[1])))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Options{}, fmt.Errorf("%s: %w", Kind, err)
	}
	if d.More() {
		return Options{}, fmt.Errorf("%s: data after the request", Kind)
	}
	if r.Cleanup == nil {
		return Options{}, fmt.Errorf("%s: the request holds no cleanup", Kind)
	}
	return *r.Cleanup, nil
}
