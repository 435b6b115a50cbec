// Package cli holds sifkernel's commands: each file parses one command's
// arguments and calls the libraries. It is the only importer of urfave/cli.
package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Options are what the commands take from the process. Tests set them all.
type Options struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	// LookupEnv tells a variable set empty from one not set; nil derives it
	// from Getenv (or uses os.LookupEnv when Getenv is nil too).
	LookupEnv func(string) (string, bool)
	Home      string           // the user's home; empty means os.UserHomeDir
	Now       func() time.Time // nil means time.Now
	Euid      int              // effective uid; root never reads a user config
	// ConfigureLog sets up logging once the config is known; hook says a
	// Slurm hook runs (its output is thrown away). Only main configures
	// logrus; nil leaves logging as it is.
	ConfigureLog func(c config.Log, hook bool) error
	Logger       *logrus.Logger // nil means logrus.StandardLogger()
	// Self is the binary hooks run again as the job user; "" means os.Executable.
	Self string
	// LookupUser finds a uid in the user database; nil means slurm.LookupUser.
	LookupUser func(int) (slurm.User, error)
	// Exec replaces the process with another program (idev); nil means
	// syscall.Exec.
	Exec func(argv0 string, argv, envv []string) error
}

// env is the state commands share, filled in by the app's Before.
type env struct {
	Options
	cfg        *config.Loaded
	configFile string // the site file in use, passed on to children
	onDefaults bool   // a hook fell back to the built-in config
	log        *logrus.Logger
}

func isInternal(c *cli.Context) bool { return c.Args().First() == lifecycle.ChildCommand }

// Run parses args (args[0] is the program) and runs the command.
func Run(ctx context.Context, opts Options, args []string) error {
	e := &env{Options: opts}
	switch {
	case e.Getenv == nil && e.LookupEnv == nil:
		e.Getenv, e.LookupEnv = os.Getenv, os.LookupEnv
	case e.LookupEnv == nil:
		get := e.Getenv
		e.LookupEnv = func(k string) (string, bool) { v := get(k); return v, v != "" }
	case e.Getenv == nil:
		look := e.LookupEnv
		e.Getenv = func(k string) string { v, _ := look(k); return v }
	}
	if e.LookupUser == nil {
		e.LookupUser = slurm.LookupUser
	}
	if e.Self == "" {
		e.Self, _ = os.Executable()
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Home == "" {
		e.Home, _ = os.UserHomeDir()
	}
	if e.log = opts.Logger; e.log == nil {
		e.log = logrus.StandardLogger()
	}
	app := e.app()
	err := app.RunContext(ctx, reorder(app, args))
	var u *UsageError
	if errors.Is(err, kernels.ErrUsage) && !errors.As(err, &u) {
		err = &UsageError{Err: err}
	}
	return err
}

func (e *env) app() *cli.App {
	app := &cli.App{
		Name:  "sifkernel",
		Usage: "containerized Jupyter kernels on Slurm clusters",
		Description: "sifkernel creates, checks and repairs Apptainer kernelspecs, and (in Slurm\n" +
			"hooks and job scripts) gives each job kernels that use node-local images.\n" +
			"Run with no command inside a Slurm hook, it acts as that hook.",
		Version:              e.Version,
		Writer:               e.Stdout,
		ErrWriter:            e.Stderr,
		EnableBashCompletion: true,
		HideVersion:          true,
		// Errors map to exit codes in main; cli must never exit by itself.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			// The variables are read in before, through Options.Getenv, so
			// tests and hooks control them; cli's EnvVars would read os.Getenv.
			&cli.StringFlag{Name: "config", Usage: "site config `FILE` [$SIFKERNEL_CONFIG]"},
			&cli.StringFlag{Name: "log-level", Usage: "panic, fatal, error, warn, info, debug or trace [$SIFKERNEL_LOG_LEVEL]"},
			&cli.StringFlag{Name: "log-format", Usage: "text or json [$SIFKERNEL_LOG_FORMAT]"},
			&cli.StringFlag{Name: "jupyter-core", Usage: "follow the kernel discovery of jupyter_core `VERSION` (4, 5, 5.7.2) or auto [$SIFKERNEL_JUPYTER_CORE]"},
			&cli.StringFlag{Name: "jupyter-python", Usage: "the Python `VERSION` (3.11) Jupyter runs on, or auto [$SIFKERNEL_JUPYTER_PYTHON]"},
		},
		Before: e.before,
		Action: e.runDefault,
		Commands: []*cli.Command{
			e.versionCommand(),
			e.configCommand(),
			e.kernelCommand(),
			e.stageCommand(),
			e.cacheCommand(),
			e.nodeCommand(),
			e.metricsCommand(),
			e.prologCommand(),
			e.taskPrologCommand(),
			e.epilogCommand(),
			e.activateCommand(),
			e.envCommand(),
			e.runCommand(),
			e.sweepCommand(),
			e.idevCommand(),
			e.demoCommand(),
			e.internalCommand(),
			e.completionCommand(),
		},
	}
	for _, c := range app.Commands {
		setUsageErrors(c)
	}
	app.OnUsageError = onUsageError
	return app
}

func setUsageErrors(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, s := range c.Subcommands {
		setUsageErrors(s)
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return &UsageError{Err: err} }

// before loads the config and sets up logging. A hook (no command in a
// Slurm context, a hook command, or a hook's child running as the user)
// must not fail on a bad config: it falls back to the defaults and says so
// loudly.
func (e *env) before(c *cli.Context) error {
	site := c.String("config")
	if site == "" {
		site = e.Getenv("SIFKERNEL_CONFIG")
	}
	explicit := site != ""
	if !explicit {
		site = config.Installed(e.Self)
	}
	e.configFile = site
	hook := e.isHook(c) || isHookCommand(c) && !isInternal(c)
	files := config.Files{Site: site, SiteExplicit: explicit, User: e.userConfig(), AsRoot: e.Euid == 0, Hook: hook}
	if isInternal(c) && c.Args().Get(1) != lifecycle.ChildUserPartKind {
		// A cleanup, sweep or usage child serves root on the site's config
		// alone: a user who breaks their own config.toml after the Prolog
		// must not keep their job's leftovers from being removed.
		files.User = ""
	}
	var cfg *config.Loaded
	var err error
	if isInternal(c) && e.Getenv(lifecycle.ChildDefaultsEnv) == "1" {
		// The hook that started this child runs on the defaults: so does it.
		cfg, e.configFile = config.Defaults(), ""
	} else if cfg, err = config.Load(files); err == nil && cfg.FellBack != nil {
		e.log.WithError(cfg.FellBack).WithField("hook", e.hookName(c)).WithField("job", slurm.EnvJobID(e.Getenv)).
			Error("config unusable; this hook runs with the built-in defaults")
		e.configFile = ""
		e.onDefaults = true
	}
	if err != nil {
		return err
	}
	for _, o := range []struct{ flag, env, key string }{
		{"log-level", "SIFKERNEL_LOG_LEVEL", "log.level"},
		{"log-format", "SIFKERNEL_LOG_FORMAT", "log.format"},
		{"jupyter-core", "SIFKERNEL_JUPYTER_CORE", "jupyter.core"},
		{"jupyter-python", "SIFKERNEL_JUPYTER_PYTHON", "jupyter.python"},
	} {
		value, src := c.String(o.flag), config.Source{Kind: "flag", Name: "--" + o.flag}
		if !c.IsSet(o.flag) {
			value, src = e.Getenv(o.env), config.Source{Kind: "env", Name: o.env}
		}
		if value == "" {
			continue
		}
		if err := cfg.Set(o.key, value, src); err != nil {
			return &UsageError{Err: err}
		}
	}
	e.cfg = cfg
	if e.ConfigureLog != nil {
		return e.ConfigureLog(cfg.Log, e.isHook(c) || isHookCommand(c))
	}
	return nil
}

// userConfig is the user's config file, or "" when running as root.
func (e *env) userConfig() string {
	if e.Euid == 0 {
		return ""
	}
	if x := e.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "sifkernel", "config.toml")
	}
	if e.Home == "" {
		return ""
	}
	return filepath.Join(e.Home, ".config", "sifkernel", "config.toml")
}

// user is the person running a command, for the kernel commands' work.
func (e *env) user() *kernels.User {
	return &kernels.User{Config: e.cfg, Getenv: e.Getenv, LookupEnv: e.LookupEnv, Home: e.Home,
		Log: e.log, Stderr: e.Stderr, Now: e.Now, Version: e.Version}
}
