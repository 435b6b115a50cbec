// Package logsetup points logrus where the [log] config says, the same
// way for sifkernel and for sifkernel-cleanup: stderr, and the log file or
// syslog a hook needs (Slurm throws away what hooks print).
package logsetup

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/sifkernel/sifkernel/wrapper/config"
)

// Configure applies the [log] config. Hooks need a file or syslog: Slurm
// throws away what they print.
func Configure(c config.Log, hook bool) error {
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
