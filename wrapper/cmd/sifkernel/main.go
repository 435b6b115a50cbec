// Command sifkernel makes containerized Jupyter kernels work well on Slurm
// clusters. See the README for the commands and the Slurm hooks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/cli"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitProblems = 1
	exitUsage    = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, cli.Options{
		Version:      version,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Euid:         os.Geteuid(),
		ConfigureLog: configureLog,
	}, os.Args)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place errors become exit codes.
func exitCode(err error, stderr io.Writer) int {
	var usage *cli.UsageError
	var status *cli.ExitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status):
		return status.Code
	case errors.Is(err, cli.ErrProblemsFound):
		return exitProblems
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "sifkernel: %v\nRun 'sifkernel --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "sifkernel: %v\n", err)
	return exitProblems
}

// configureLog applies the [log] config. Hooks need a file or syslog: Slurm
// throws away what they print.
func configureLog(c config.Log, hook bool) error {
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return err
	}
	logrus.SetLevel(level)
	if c.Format == "json" {
		logrus.SetFormatter(&logrus.JSONFormatter{})
	} else {
		logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: c.File == "", FullTimestamp: true})
	}
	logrus.SetOutput(os.Stderr)
	switch c.File {
	case "":
		if hook {
			addSyslog() // Slurm throws a hook's output away: keep a copy in syslog
		}
	case "syslog":
		if !addSyslog() {
			return fmt.Errorf("log.file = syslog: no syslog to write to")
		}
	default:
		// Root hooks write the site's log file; a user (a TaskProlog, a
		// command) usually may not, and then logs to stderr (and syslog).
		// Not through a symlink, never blocking on a FIFO, only a regular
		// file: hooks open it as root, possibly in a directory others write.
		f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
		if err == nil {
			if st, serr := f.Stat(); serr != nil || !st.Mode().IsRegular() {
				f.Close()
				err = fmt.Errorf("%s is not a regular file", c.File)
			}
		}
		if err != nil {
			if hook {
				addSyslog()
			}
			return nil
		}
		logrus.SetOutput(io.MultiWriter(os.Stderr, f))
	}
	return nil
}

func addSyslog() bool {
	h, err := lsyslog.NewSyslogHook("", "", syslog.LOG_INFO|syslog.LOG_DAEMON, "sifkernel")
	if err != nil {
		return false
	}
	logrus.AddHook(h)
	return true
}
