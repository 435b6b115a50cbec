package lifecycle

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// forwarded are the signals run passes on to its command (Slurm sends
// SIGTERM at the time limit, SIGUSR1 with --signal, SIGINT on scancel -s).
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1}

// Run activates the job's kernels, runs argv with the exports, forwards
// signals to it, and when it ends cleans up what it made (a job directory a
// Prolog made is the Epilog's). It returns the command's exit status.
func (e *Env) Run(ctx context.Context, job slurm.JobID, argv []string) (int, error) {
	_, prepared := e.preparedJobDir(job)
	madeHere := !prepared
	ex, err := e.Activate(ctx, job, "run")
	if err != nil {
		return 1, err
	}
	if madeHere {
		defer func() {
			if err := e.Cleanup(CleanupOptions{Job: job, GC: true}); err != nil {
				e.Log.WithField("job", job).Warnf("cleaning up after the command: %v", err)
			}
		}()
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, err
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = os.Environ()
	for _, kv := range ex.Vars() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, e.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 126, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, err
}
