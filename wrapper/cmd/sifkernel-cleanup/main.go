// Command sifkernel-cleanup is the job user's side of the Epilog, and
// nothing else: root's Epilog runs it as the job user, in place of
// `sifkernel internal user-cleanup`, where it is installed in
// ../libexec/sifkernel beside sifkernel's bin/ or beside sifkernel, on a
// path root alone can change (see lifecycle.Cleaners). It takes
// the same arguments and does the same work (package jobclean), but it is
// built from only that work's packages and without cgo, so it starts in a
// fraction of sifkernel's time: that start is the larger part of what an
// Epilog costs beyond one run of sifkernel. It is not for people.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/jobclean"
	"github.com/sifkernel/sifkernel/wrapper/logsetup"
	"github.com/sifkernel/sifkernel/wrapper/runas"
)

// Exit codes, as sifkernel's: 1 for a cleanup that failed, 2 for a call
// root's hooks would not have made.
const (
	exitProblems = 1
	exitUsage    = 2
)

func main() {
	if err := runas.NotDumpable(); err != nil {
		fmt.Fprintf(os.Stderr, "sifkernel-cleanup: not made non-dumpable (carrying on): %v\n", err)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "sifkernel-cleanup: runs as the job user, started by the Epilog; not as root")
		return exitUsage
	}
	site, opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sifkernel-cleanup: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(site)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sifkernel-cleanup: %v\n", err)
		return exitProblems
	}
	if err := logsetup.Configure(cfg.Log, true); err != nil {
		fmt.Fprintf(os.Stderr, "sifkernel-cleanup: %v\n", err)
		return exitProblems
	}
	env := jobclean.Env{Cache: cfg.Cache, Now: time.Now, Log: logrus.StandardLogger(), TempDir: os.Getenv("TMPDIR")}
	if err := jobclean.Run(env, opts); err != nil {
		fmt.Fprintf(os.Stderr, "sifkernel-cleanup: %v\n", err)
		return exitProblems
	}
	return 0
}

// parseArgs takes what root's Epilog passes (lifecycle's asUser):
// [--config FILE] internal user-cleanup REQUEST.
func parseArgs(args []string) (string, jobclean.Options, error) {
	site := ""
	if len(args) >= 2 && args[0] == "--config" {
		site, args = args[1], args[2:]
	}
	if len(args) == 0 || args[0] != "internal" {
		return "", jobclean.Options{}, fmt.Errorf("takes [--config FILE] internal %s REQUEST", jobclean.Kind)
	}
	o, err := jobclean.ParseRequest(args[1:])
	return site, o, err
}

// loadConfig reads the site's config as `sifkernel internal` does for a
// cleanup: the named file, else SIFKERNEL_CONFIG, else the one installed
// beside this binary (config.Installed), else the default; never the
// user's own (a user who breaks it must not keep her job's leftovers from
// being removed); the built-in defaults when the hook runs on them.
func loadConfig(site string) (*config.Loaded, error) {
	var cfg *config.Loaded
	if os.Getenv(jobclean.DefaultsEnv) == "1" {
		cfg = config.Defaults()
	} else {
		if site == "" {
			site = os.Getenv("SIFKERNEL_CONFIG")
		}
		explicit := site != ""
		if !explicit {
			self, _ := os.Executable()
			site = config.Installed(self)
		}
		var err error
		if cfg, err = config.Load(config.Files{Site: site, SiteExplicit: explicit}); err != nil {
			return nil, err
		}
	}
	for _, o := range []struct{ env, key string }{{"SIFKERNEL_LOG_LEVEL", "log.level"}, {"SIFKERNEL_LOG_FORMAT", "log.format"}} {
		if v := os.Getenv(o.env); v != "" {
			if err := cfg.Set(o.key, v, config.Source{Kind: "env", Name: o.env}); err != nil {
				return nil, err
			}
		}
	}
	return cfg, nil
}
