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

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/sifkernel/sifkernel/wrapper/cli"
	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/runas"
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
	harden(os.Args)
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

// harden runs before anything else. As root, no descriptor this process
// inherited may reach a program it starts (the job user's child above
// all); as a hook's child, running as the job user, the user must not be
// able to trace it (see runas.NotDumpable for what that does not stop).
// Neither can fail a hook: a failure is only less protection.
func harden(args []string) {
	if os.Geteuid() == 0 {
		if err := runas.CloseInherited(); err != nil {
			fmt.Fprintf(os.Stderr, "sifkernel: inherited descriptors not closed (carrying on): %v\n", err)
		}
	}
	for i, a := range args {
		if i > 0 && i <= 3 && a == lifecycle.ChildCommand {
			if err := runas.NotDumpable(); err != nil {
				fmt.Fprintf(os.Stderr, "sifkernel: not made non-dumpable (carrying on): %v\n", err)
			}
		}
	}
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
		f, err := openLogFile(c.File)
		if err != nil {
			if hook {
				addSyslog()
				if os.Geteuid() == 0 {
					logrus.Warnf("log.file %s not used: %v", c.File, err)
				}
			}
			return nil
		}
		logrus.SetOutput(io.MultiWriter(os.Stderr, f))
	}
	return nil
}

// openLogFile opens the log file to append to, if it is one the caller may
// trust: a regular file (not through a symlink, never blocking on a FIFO),
// with one link, owned by the caller or by root and writable by nobody
// else. A log file in a directory others may write could be made by a user
// first (or be a hard link to another file): root would then append every
// user's job lines to a file that user reads and wipes.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	err = syscall.Fstat(int(f.Fd()), &st)
	switch {
	case err != nil:
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		err = fmt.Errorf("not a regular file")
	case st.Nlink != 1:
		err = fmt.Errorf("it has %d hard links", st.Nlink)
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		err = fmt.Errorf("owned by uid %d, not by root", st.Uid)
	case st.Mode&0o022 != 0:
		err = fmt.Errorf("mode %04o: group or others may write to it", st.Mode&0o7777)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func addSyslog() bool {
	h, err := lsyslog.NewSyslogHook("", "", syslog.LOG_INFO|syslog.LOG_DAEMON, "sifkernel")
	if err != nil {
		return false
	}
	logrus.AddHook(h)
	return true
}
