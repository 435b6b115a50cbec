package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/jobclean"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// CleanupOptions say what a user-side cleanup removes (see jobclean).
type CleanupOptions = jobclean.Options

// Cleanup is the user's side of an Epilog or of `run` (see jobclean.Run):
// the same work sifkernel-cleanup does for the Epilog where it is
// installed.
func (e *Env) Cleanup(o CleanupOptions) error {
	return jobclean.Run(e.cleanEnv(), o)
}

func (e *Env) cleanEnv() jobclean.Env {
	return jobclean.Env{Cache: e.Config.Cache, Now: e.Now, Log: e.Log, TempDir: e.getenv("TMPDIR")}
}

// emptyRootJobDir removes what is inside jobs/<job>, which must be the
// calling user's directory in a verified cache root.
func (e *Env) emptyRootJobDir(job slurm.JobID) error {
	return jobclean.EmptyRootJobDir(e.Config.Cache.Dir, job)
}

// cleanupBudget bounds how long the user's side of a cleanup removes.
const cleanupBudget = jobclean.Budget

// CleanerName is the small binary that serves a cleanup request in place
// of sifkernel (wrapper/cmd/sifkernel-cleanup).
const CleanerName = "sifkernel-cleanup"

// Cleaners are where root looks for CleanerName, relative to the
// directory sifkernel is in: where make install and the packages put it
// (PREFIX/libexec/sifkernel beside PREFIX/bin), then beside sifkernel (a
// build tree's bin/).
func Cleaners(self string) []string {
	dir := filepath.Dir(self)
	return []string{filepath.Join(filepath.Dir(dir), "libexec", "sifkernel", CleanerName), filepath.Join(dir, CleanerName)}
}

// childBinary is the program root runs for req as the job user: Self, or
// for a cleanup the first of Cleaners there is, if root alone could have
// put it there (see trustedProgram). One that fails the check is not run,
// and the log says why; with none, Self does the cleanup.
func (e *Env) childBinary(req ChildRequest) string {
	if req.Cleanup == nil || e.Self == "" {
		return e.Self
	}
	for _, p := range Cleaners(e.Self) {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = trustedProgram(p, st)
		}
		if err != nil {
			e.Log.Warnf("%s not used (%v): the cleanup runs in %s", p, err, e.Self)
			return e.Self
		}
		return p
	}
	return e.Self
}

// trustedProgram says why the program at p, st, is not one root may run
// as a user: one root alone can change, on a path root alone can change
// (fsx.CheckTrustedFile, the rule for every program root runs), and
// executable; nil if it is.
func trustedProgram(p string, st fs.FileInfo) error {
	if err := fsx.CheckTrustedFile(p); err != nil {
		return err
	}
	if st.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}
