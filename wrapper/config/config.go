// Package config holds sifkernel's settings: their defaults, the strict TOML
// files they are read from, and where each effective value came from.
package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
)

// Config is the effective configuration. Every field has a default (see Default).
type Config struct {
	Apptainer  Apptainer  `toml:"apptainer" json:"apptainer"`
	Node       Node       `toml:"node" json:"node"`
	Cache      Cache      `toml:"cache" json:"cache"`
	Prolog     Prolog     `toml:"prolog" json:"prolog"`
	TaskProlog TaskProlog `toml:"taskprolog" json:"taskprolog"`
	Slurm      Slurm      `toml:"slurm" json:"slurm"`
	Idev       Idev       `toml:"idev" json:"idev"`
	Kernel     Kernel     `toml:"kernel" json:"kernel"`
	Jupyter    Jupyter    `toml:"jupyter" json:"jupyter"`
	Log        Log        `toml:"log" json:"log"`
	Metrics    Metrics    `toml:"metrics" json:"metrics"`
}

// Metrics says where the root hooks keep the node's counters (`sifkernel
// metrics` reports them).
type Metrics struct {
	// Dir is a directory root alone may change; "" turns counting off.
	Dir string `toml:"dir" json:"dir"`
}

// TaskProlog configures the per-task hook, which must stay fast.
type TaskProlog struct {
	// Budget bounds the work a TaskProlog does itself when no Prolog ran.
	Budget Duration `toml:"budget" json:"budget"`
}

// Slurm names the Slurm commands sifkernel runs, by absolute path (hooks have no PATH).
type Slurm struct {
	Squeue string `toml:"squeue" json:"squeue"`
	Sbcast string `toml:"sbcast" json:"sbcast"`
	Srun   string `toml:"srun" json:"srun"`
}

// Idev configures the idev wrapper.
type Idev struct {
	Path string `toml:"path" json:"path"` // empty: idev on PATH
}

// Apptainer says how the container runtime is found and called.
type Apptainer struct {
	Path         string   `toml:"path" json:"path"`
	Search       []string `toml:"search" json:"search"`
	GPUFlag      string   `toml:"gpu_flag" json:"gpu_flag"`
	DefaultBinds []string `toml:"default_binds" json:"default_binds"`
}

// Finder finds Apptainer by these settings; getenv nil means os.Getenv.
func (a Apptainer) Finder(getenv func(string) string) apptainer.Finder {
	return apptainer.Finder{ConfigPath: a.Path, Search: a.Search, Getenv: getenv}
}

// Node describes how compute nodes are recognised.
type Node struct {
	GPUPartitions []string `toml:"gpu_partitions" json:"gpu_partitions"`
}

// Cache configures the node-local image cache.
type Cache struct {
	Dir       string `toml:"dir" json:"dir"`
	UserQuota Size   `toml:"user_quota" json:"user_quota"`
	Reserve   Size   `toml:"reserve" json:"reserve"`
	// LowWater: whenever a hook finds less free space on the cache file
	// system than this (and never less than Reserve), entries no job uses
	// go, least recently used first, the site's and every user's alike,
	// until it is free again: jobs' own files get the room.
	LowWater Size `toml:"low_water" json:"low_water"`
	// TotalQuota bounds every user's entries and the site's together; 0:
	// only their own quotas.
	TotalQuota Size `toml:"total_quota" json:"total_quota"`
	// KeepWarm is the longest an entry no job uses stays.
	KeepWarm     Duration `toml:"keep_warm" json:"keep_warm"`
	StageTimeout Duration `toml:"stage_timeout" json:"stage_timeout"`
	Verify       string   `toml:"verify" json:"verify"`
	// ReadStreams is how many ranges of a source are read at once: "auto"
	// (several on a network file system, one elsewhere) or 1 to MaxStreams.
	ReadStreams string `toml:"read_streams" json:"read_streams"`
	// Site turns on the site cache: one copy per node of an image every
	// user could read, shared by every user's jobs (<dir>/site).
	Site bool `toml:"site" json:"site"`
	// SiteUser is the unprivileged identity that stages site images: a
	// system user of its own (the package makes "sifkernel"), else nobody.
	SiteUser string `toml:"site_user" json:"site_user"`
	// SiteQuota bounds the site cache, as UserQuota bounds a user's.
	SiteQuota Size `toml:"site_quota" json:"site_quota"`
	// SiteKeepWarm is keep_warm for the site cache: how long a site image no
	// job uses stays.
	SiteKeepWarm Duration `toml:"site_keep_warm" json:"site_keep_warm"`
	// SiteDirs, when set, are the only trees site images may come from.
	SiteDirs []string `toml:"site_dirs" json:"site_dirs"`
	// SiteOwners are the accounts besides root that publish site images:
	// an image is shared only if it and every directory above it are
	// owned by root or one of them (and no user may change them).
	SiteOwners []string `toml:"site_owners" json:"site_owners"`
	// Prefetch names images (or directories of *.sif) `cache warm` and the
	// boot unit stage into the site cache before the first job.
	Prefetch []string `toml:"prefetch" json:"prefetch"`
	// PrefetchBudget bounds one warm-up.
	PrefetchBudget Duration `toml:"prefetch_budget" json:"prefetch_budget"`
}

// Prolog configures what the root Prolog does.
type Prolog struct {
	// Timeout is the one deadline of every Prolog and Epilog run: every
	// child it starts and every copy gets only what is left of it, and
	// root kills what runs past it. Slurm's PrologEpilogTimeout must be at
	// least Timeout + SlurmMargin (see PrologEpilogTimeout).
	Timeout    Duration `toml:"timeout" json:"timeout"`
	Stage      bool     `toml:"stage" json:"stage"`
	Partitions []string `toml:"partitions" json:"partitions"`
	FailNodeOn []string `toml:"fail_node_on" json:"fail_node_on"`
}

// Kernel holds defaults for the kernelspecs sifkernel writes.
type Kernel struct {
	PythonNoUserSite bool `toml:"python_no_user_site" json:"python_no_user_site"`
	// MaxPerJob bounds the container kernels one job gets job copies of;
	// the rest are logged as skipped. A user decides how many kernels they
	// have, and the Prolog's time and log must not grow with it.
	MaxPerJob int `toml:"max_per_job" json:"max_per_job"`
	// PullDir is where `kernel add --image docker://...` stores pulled images.
	// Empty means $SCRATCH/sifkernel-images, else ~/.local/share/sifkernel/images.
	PullDir string `toml:"pull_dir" json:"pull_dir"`
}

// Jupyter says which Jupyter's kernel discovery sifkernel follows: the
// jupyter_core version (whose major, 4 or 5, decides the search path) and
// the Python it runs on (which decides how deep a kernel.json may nest).
// "auto" reads both from the jupyter or python3 on the user's PATH.
type Jupyter struct {
	Core   string `toml:"core" json:"core"`
	Python string `toml:"python" json:"python"`
}

var (
	jupyterCoreRE   = regexp.MustCompile(`^(auto|([4-9]|[1-9][0-9])(\.[0-9]+){0,2})$`)
	jupyterPythonRE = regexp.MustCompile(`^(auto|3\.[0-9]+(\.[0-9]+)?)$`)
)

// Log configures logging; hooks need a file or syslog since Slurm drops their output.
type Log struct {
	Level  string `toml:"level" json:"level"`
	Format string `toml:"format" json:"format"`
	File   string `toml:"file" json:"file"`
}

// SlurmMargin is what Slurm's PrologEpilogTimeout must leave above
// prolog.timeout: a hook ends within its deadline and 2 s (root's last
// steps, reaping what it killed); the rest is slurmd's own start of the
// hook and the binary's start, with room to spare on a loaded node.
const SlurmMargin = 10 * time.Second

// The range of prolog.timeout: below MinHookTimeout a Prolog cannot run a
// child at all; MaxHookTimeout keeps PrologEpilogTimeout within Slurm's
// 16-bit field (65534 s; 65535 is INFINITE).
const (
	MinHookTimeout = 5 * time.Second
	MaxHookTimeout = 65534*time.Second - SlurmMargin
)

// PrologEpilogTimeout is the least slurm.conf's PrologEpilogTimeout may be
// for this configuration: the one rule between the two, which the admin
// guide, the slurm.conf snippet and `sifkernel node` state.
func (c *Config) PrologEpilogTimeout() time.Duration { return c.Prolog.Timeout.Duration + SlurmMargin }

// NodeFaults are the node-level faults a site may opt in to failing the Prolog on.
var NodeFaults = []string{"cache_root"}

// Default returns the built-in configuration.
func Default() Config {
	must := func(s string) Size { v, _ := ParseSize(s); return v }
	dur := func(s string) Duration { var d Duration; _ = d.UnmarshalText([]byte(s)); return d }
	return Config{
		Apptainer: Apptainer{
			Search: []string{
				"/opt/apps/tacc-apptainer/*/bin/apptainer",
				"/usr/local/bin/apptainer",
				"/usr/bin/apptainer",
			},
			GPUFlag:      "--nv",
			DefaultBinds: []string{"/run/user"},
		},
		Node: Node{GPUPartitions: []string{"rtx", "rtx-dev"}},
		Cache: Cache{
			Dir:            "/tmp/sifkernel",
			UserQuota:      must("50%"),
			Reserve:        must("2GiB"),
			LowWater:       must("10%"),
			TotalQuota:     must("80%"),
			KeepWarm:       dur("72h"),
			StageTimeout:   dur("120s"),
			Verify:         "size",
			ReadStreams:    "auto",
			Site:           true,
			SiteUser:       "sifkernel",
			SiteQuota:      must("25%"),
			SiteKeepWarm:   dur("72h"),
			SiteDirs:       []string{},
			SiteOwners:     []string{},
			Prefetch:       []string{},
			PrefetchBudget: dur("30m"),
		},
		Prolog:     Prolog{Timeout: dur("170s"), Stage: true, Partitions: []string{}, FailNodeOn: []string{}},
		TaskProlog: TaskProlog{Budget: dur("20s")},
		Slurm:      Slurm{Squeue: "/usr/bin/squeue", Sbcast: "/usr/bin/sbcast", Srun: "/usr/bin/srun"},
		Kernel:     Kernel{PythonNoUserSite: true, MaxPerJob: 64},
		Jupyter:    Jupyter{Core: "auto", Python: "auto"},
		Log:        Log{Level: "info", Format: "text"},
		Metrics:    Metrics{Dir: "/var/lib/sifkernel"},
	}
}

// Validate reports every value that is out of range, each naming its key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	if p := c.Apptainer.Path; p != "" && !filepath.IsAbs(p) {
		bad("apptainer.path", "%q is not an absolute path", p)
	}
	if !strings.HasPrefix(c.Apptainer.GPUFlag, "-") {
		bad("apptainer.gpu_flag", "%q is not a flag (such as --nv)", c.Apptainer.GPUFlag)
	}
	for _, b := range c.Apptainer.DefaultBinds {
		if src, _, _ := strings.Cut(b, ":"); !filepath.IsAbs(src) {
			bad("apptainer.default_binds", "%q: the source must be an absolute path", b)
		}
	}
	for _, g := range append(slices.Clone(c.Node.GPUPartitions), c.Prolog.Partitions...) {
		if _, err := filepath.Match(g, ""); err != nil {
			bad("partitions", "%q is not a valid glob", g)
		}
	}
	if !filepath.IsAbs(c.Cache.Dir) || filepath.Clean(c.Cache.Dir) == "/" {
		bad("cache.dir", "%q must be an absolute path other than /", c.Cache.Dir)
	}
	if t := c.Prolog.Timeout.Duration; t < MinHookTimeout || t > MaxHookTimeout {
		bad("prolog.timeout", "%s: want %s to %s (Slurm's PrologEpilogTimeout less %s)", t, MinHookTimeout, MaxHookTimeout, SlurmMargin)
	}
	if c.Cache.StageTimeout.Duration <= 0 {
		bad("cache.stage_timeout", "must be above zero")
	}
	if _, err := ParseStreams(c.Cache.ReadStreams); err != nil {
		bad("cache.read_streams", "%v", err)
	}
	if c.Cache.Site && (c.Cache.SiteUser == "" || c.Cache.SiteUser == "root" || strings.ContainsAny(c.Cache.SiteUser, "/:\n")) {
		bad("cache.site_user", "%q: want an unprivileged system user (such as sifkernel or nobody)", c.Cache.SiteUser)
	}
	for _, o := range c.Cache.SiteOwners {
		if o == "" || strings.ContainsAny(o, "/:\n ") {
			bad("cache.site_owners", "%q is not a user name", o)
		}
	}
	for key, list := range map[string][]string{"cache.site_dirs": c.Cache.SiteDirs, "cache.prefetch": c.Cache.Prefetch} {
		for _, p := range list {
			if !filepath.IsAbs(p) {
				bad(key, "%q is not an absolute path", p)
			}
		}
	}
	if c.Kernel.MaxPerJob < 1 || c.Kernel.MaxPerJob > 10000 {
		bad("kernel.max_per_job", "%d: want 1 to 10000", c.Kernel.MaxPerJob)
	}
	if c.Cache.Verify != "size" && c.Cache.Verify != "sha256" {
		bad("cache.verify", "%q: want \"size\" or \"sha256\"", c.Cache.Verify)
	}
	for key, p := range map[string]string{"slurm.squeue": c.Slurm.Squeue, "slurm.sbcast": c.Slurm.Sbcast, "slurm.srun": c.Slurm.Srun, "idev.path": c.Idev.Path} {
		if p != "" && !filepath.IsAbs(p) {
			bad(key, "%q is not an absolute path", p)
		}
	}
	for _, f := range c.Prolog.FailNodeOn {
		if !slices.Contains(NodeFaults, f) {
			bad("prolog.fail_node_on", "%q: known node-level faults are %s", f, strings.Join(NodeFaults, ", "))
		}
	}
	if !jupyterCoreRE.MatchString(c.Jupyter.Core) {
		bad("jupyter.core", "%q: want \"auto\" or a jupyter_core version of 4 or later (such as 5 or 4.12)", c.Jupyter.Core)
	}
	if !jupyterPythonRE.MatchString(c.Jupyter.Python) {
		bad("jupyter.python", "%q: want \"auto\" or a Python 3 version (such as 3.11)", c.Jupyter.Python)
	}
	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%q: want panic, fatal, error, warn, info, debug or trace", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: want \"text\" or \"json\"", c.Log.Format)
	}
	if p := c.Metrics.Dir; p != "" && (!filepath.IsAbs(p) || filepath.Clean(p) == "/") {
		bad("metrics.dir", "%q must be an absolute path other than / (or empty: no counters)", p)
	}
	if p := c.Log.File; p != "" && p != "syslog" && !filepath.IsAbs(p) {
		bad("log.file", "%q: want an absolute path or \"syslog\"", p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// MaxStreams is the most cache.read_streams may ask for.
const MaxStreams = 16

// ParseStreams reads cache.read_streams: "auto" is 0 (decided per source),
// else a count from 1 to MaxStreams.
func ParseStreams(s string) (int, error) {
	if s == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxStreams {
		return 0, fmt.Errorf("%q: want \"auto\" or 1 to %d", s, MaxStreams)
	}
	return n, nil
}

// Streams is cache.read_streams as a count, 0 for "auto".
func (c Cache) Streams() int {
	n, _ := ParseStreams(c.ReadStreams)
	return n
}
