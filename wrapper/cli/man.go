package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/config"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// A ManPage is one manual page, rendered as roff, and the Markdown it is
// rendered from (committed as doc/man/NAME.md, for readers on the web).
type ManPage struct {
	Name     string // the file name: sifkernel-kernel.1
	Roff     []byte
	Markdown []byte
}

// manGroup is one page: the commands it documents and what it adds to
// what the commands say of themselves.
type manGroup struct {
	name, usage string
	section     int
	commands    []string // top-level commands; nil means every visible one
	extra       string   // Markdown sections after the commands
}

// ManPages renders sifkernel's manual pages from the commands themselves
// (urfave/cli's Markdown, then go-md2man): sifkernel(1) with every command,
// one page per command group, sifkernel-hooks(8) for administrators and
// sifkernel.toml(5) for the config file. exampleConfig is the annotated
// example config (examples/config.toml), shown whole in sifkernel.toml(5).
func ManPages(version string, exampleConfig []byte) ([]ManPage, error) {
	e := &env{Options: Options{Version: version}}
	app := e.app()
	byName := map[string]*cli.Command{}
	for _, c := range app.Commands {
		byName[c.Name] = c
	}
	groups := []manGroup{
		{name: "sifkernel", section: 1, usage: app.Usage, extra: manMain() + manJSON},
		{name: "sifkernel-kernel", section: 1, usage: "create, list, check, repair and remove containerized kernelspecs",
			commands: []string{"kernel"}, extra: manKernel + manCheckCodes()},
		{name: "sifkernel-cache", section: 1, usage: "stage images into the node-local cache, look after it, report on it",
			commands: []string{"stage", "cache", "node", "metrics"}, extra: manCache()},
		{name: "sifkernel-job", section: 1, usage: "container kernels in job scripts and interactive sessions",
			commands: []string{"activate", "run", "env", "idev"}, extra: manJob},
		{name: "sifkernel-hooks", section: 8, usage: "sifkernel as Slurm Prolog, TaskProlog and Epilog, and its sweep",
			commands: []string{slurm.Prolog, slurm.TaskProlog, slurm.Epilog, slurm.Sweep}, extra: manHooks()},
		{name: "sifkernel.toml", section: 5, usage: "sifkernel's configuration files",
			commands: []string{"config"}, extra: manConfig(exampleConfig)},
	}
	var pages []ManPage
	for _, g := range groups {
		sub := &cli.App{Name: "sifkernel", Usage: g.usage, Flags: app.Flags, HideHelpCommand: true}
		if g.commands == nil {
			sub.Description = app.Description
			for _, c := range app.Commands {
				if !c.Hidden && c.Name != "help" {
					sub.Commands = append(sub.Commands, c)
				}
			}
		}
		for _, n := range g.commands {
			c, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("man page %s: no command %q", g.name, n)
			}
			sub.Commands = append(sub.Commands, c)
		}
		md, err := sub.ToMarkdown()
		if err != nil {
			return nil, fmt.Errorf("man page %s: %w", g.name, err)
		}
		// The NAME line is what whatis(1) and apropos(1) index: the page's name.
		md = strings.Replace(md, "# NAME\n\nsifkernel - ", "# NAME\n\n"+g.name+" - ", 1)
		md = manEscape(md)
		title := fmt.Sprintf("%% %s %d \"\" \"sifkernel %s\" \"sifkernel manual\"\n\n", strings.ToUpper(g.name), g.section, version)
		text := title + md + "\n" + g.extra + manSeeAlso(g.name, groups)
		pages = append(pages, ManPage{Name: fmt.Sprintf("%s.%d", g.name, g.section), Roff: md2man.Render([]byte(text)), Markdown: []byte(text)})
	}
	return pages, nil
}

// manEscape keeps text urfave/cli writes from reading as Markdown it is not:
// a `--flag` inside a backquoted usage is fine, but a bare "*" or "_" in a
// glob or a file name would start emphasis.
func manEscape(md string) string {
	lines := strings.Split(md, "\n")
	inCode := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			lines[i] = strings.NewReplacer("_", `\_`, "*", `\*`).Replace(l)
			// Headings and list markers urfave/cli writes stay as they are.
			if strings.HasPrefix(l, "**") || strings.HasPrefix(l, "* ") {
				lines[i] = l
			}
		}
	}
	return strings.Join(lines, "\n")
}

func manSeeAlso(self string, groups []manGroup) string {
	var refs []string
	for _, g := range groups {
		if g.name != self {
			refs = append(refs, fmt.Sprintf("**%s**(%d)", g.name, g.section))
		}
	}
	refs = append(refs, "**apptainer**(1)", "**slurm.conf**(5)", "**jupyter**(1)")
	slices.Sort(refs[:len(refs)-3])
	return "# SEE ALSO\n\n" + strings.Join(refs, ", ") + "\n\nThe administrator's guide (hooks, failure policy, security model, node cache, metrics): /usr/share/doc/sifkernel/ADMIN.md\n"
}

// manCheckCodes is the rule table of kernel check, as the man page's
// definition list.
func manCheckCodes() string {
	esc := strings.NewReplacer("_", `\_`, "*", `\*`, "<", `\<`, ">", `\>`)
	var b strings.Builder
	b.WriteString("# CHECK CODES\n\nWhat **kernel check** reports (severity; whether **kernel fix** repairs it):\n\n")
	for _, r := range kernelspec.Rules() {
		fmt.Fprintf(&b, "**%s** (%s)\n: %s\n\n", r.Code, r.Kind(), esc.Replace(r.Meaning))
	}
	return b.String()
}

// manDefault states a config key's default as the man pages write every
// default, "**key** (default VALUE)", with the value from config.Default():
// TestManDefaults holds every such statement to it.
func manDefault(key string) string {
	for _, st := range config.Defaults().Settings() {
		if st.Key == key {
			v := fmt.Sprint(st.Value)
			if v == "" {
				v = `""`
			}
			return fmt.Sprintf("**%s** (default %s)", manKey(key), v)
		}
	}
	panic("man page names no config key " + key)
}

func manKey(key string) string { return strings.ReplaceAll(key, "_", `\_`) }

func manMain() string {
	return `# FILES

*` + config.DefaultSiteFile + `*
: the site config, root's alone (see **sifkernel.toml**(5)).

*~/.config/sifkernel/config.toml*
: a user's config, for the few keys users may set.

*~/.local/share/jupyter/kernels/NAME/kernel.json*
: the kernels **sifkernel kernel add** writes; never changed by a job.

*` + config.Default().Cache.Dir + `*
: the node cache, ` + manDefault("cache.dir") + `: users/UID holds each user's staged images, jobs/JOB each job's kernels.

# ENVIRONMENT

**SIFKERNEL\_CONFIG**
: the site config file, instead of /etc/sifkernel/config.toml.

**SIFKERNEL\_LOG\_LEVEL**, **SIFKERNEL\_LOG\_FORMAT**
: as --log-level and --log-format.

**JUPYTER\_PATH**, **JUPYTER\_DATA\_DIR**, **IPYTHONDIR**, **VIRTUAL\_ENV**, **CONDA\_PREFIX**
: where kernels are found, exactly as Jupyter finds them.

**SLURM\_JOB\_ID**, **SLURM\_SCRIPT\_CONTEXT**
: the job, and (with no command) which hook sifkernel runs as.

# EXIT STATUS

0 on success; 1 when a command failed or **kernel check** found errors; 2 for a command line that
does not parse. As a Slurm hook sifkernel exits 0 for every problem a user can cause (see
**sifkernel-hooks**(8)).
`
}

// manJSON documents every --json output, in sifkernel(1).
const manJSON = `
# JSON OUTPUT

Every **--json** output is one object with a "schema" field; a change that breaks readers bumps
its version.

` + "`sifkernel/kernel-list/v1`" + `
: {"schema", "kernels": [{"name", "dir", "data_dir", "origin" (JUPYTER_PATH, user, python user
base, sys.prefix, system, ipython), "display_name", "language", "container", "image",
"shadowed_by", "jupyter_lists", "ignored"?, "load_error"?, "problems"}], "jupyter": JUPYTER,
"search_path": [{"path", "origin"}]}. "problems" counts errors and warnings; "jupyter_lists" says
whether Jupyter lists this directory under the name. JUPYTER is the model used: {"model" (4 or 5),
"jupyter_core", "python" ("" when unknown), "sys_prefix"?, "sys_base_prefix"?, "no_user_site"?,
"jedi"?, "found"?, "why"}.

` + "`sifkernel/kernel-check/v1`" + `
: {"schema", "kernels": [{"name", "file", "findings": [{"severity" (error, warning, info), "code",
"file", "line"?, "column"?, "message", "hint"?, "fixable"}]}], "errors", "warnings", "jupyter":
JUPYTER, "job_path": JOBPATH}. The codes: **sifkernel-kernel**(1), CHECK CODES. JOBPATH says
whether a Jupyter started here finds the job's kernels first: {"job_dir"?, "first", "hook"? (the
Jupyter base config that puts them first), "warning" (counted in "warnings"), "says"}.

` + "`sifkernel/config/v1`" + `
: {"schema", "settings": [{"key", "value", "source": {"kind" (default, site, user, env, flag),
"file"?, "line"?, "name"?}}]}.

` + "`sifkernel/version/v1`" + `
: {"schema", "version", "go"}.

` + "`sifkernel/stage/v1`" + `
: {"schema", "cache", "images": [{"source", "path", "key"?, "staged", "copied", "resumed_bytes"?,
"bytes", "took_ns", "reason"?, "site"?, "site_note"?}]}. "resumed_bytes": how much of the copy an
earlier, cut-off one had made. "path" is what to use; "staged" false means it is the source
and "reason" says why; "site" means "path" is the site cache's copy, and "site_note" says why an
image was staged for you alone instead.

` + "`sifkernel/cache-list/v1`" + `
: {"schema", "dir", "entries": [{"key", "source", "size", "mtime", "sif_id"?, "sha256"?,
"staged_at", "dev"?, "ino"?, "ctime"?, "uid", "path", "last_used", "refs"}], "usage": {"used", "quota", "free", "reserve",
"total"}, "site"?: {"dir", "entries": [...]}} (bytes; "site" is the site cache, where there is one).

` + "`sifkernel/cache-warm/v1`" + `
: {"schema", "results": [{"image", "key"?, "staged", "copied"?, "resumed"?, "bytes"?, "reason"?,
"timed_out"?}], "evicted"?}. A directory not taken is a result of its own, with the reason.

` + "`sifkernel/cache-gc/v1`" + `
: {"schema", "dry_run", "entries", "temps", "orphans", "jobs", "freed"}.

` + "`sifkernel/cache-verify/v1`" + `
: {"schema", "images": [{"key", "path", "ok", "problem"?}], "bad"}.

` + "`sifkernel/node/v1`" + `
: {"schema", "apptainer": {"path", "rule", "version"} or null, "gpu": {"present", "expected",
"devices", "facts": [{"source", "value"}], "reason", "warning"?}, "host": {"hostname", "os",
"kernel", "cpus", "cpu_model", "mem_total", "mem_available", "cache_dir", "cache_free",
"cache_total", "cache_fstype"}, "jupyter": JUPYTER, "hook_timeout": {"slurm"?: {"seconds"?,
"infinite"?}, "needed_seconds", "ok"?, "says"} (Slurm's PrologEpilogTimeout against
prolog.timeout + 10 s), "job_path": JOBPATH}.

A job directory's *node.json*
: {"job", "job_dir", "created_by", "node" (Slurm's name for the node), "node_from"
(SLURMD_NODENAME, or hostname outside Slurm), "gpu", "apptainer", "kernels": [{"name", "source",
"image", "staged", "reason"?, "skipped", "changes"}], "warnings"?, "finished_at"}.
`

const manKernel = `# EXAMPLES

    sifkernel kernel add pytorch --image $SCRATCH/images/pytorch.sif
    sifkernel kernel add r --language r --image docker://rocker/r-ver:4.4
    sifkernel kernel check
    sifkernel kernel fix --dry-run

A kernel's kernel.json is written atomically; **--force** and **fix** keep the file they replace as
kernel.json.bak-TIMESTAMP beside it.
`

func manCache() string {
	return `# THE NODE CACHE

Each user's images are copied once per node into cache.dir/users/UID, under a lock, verified
(size, SIF header and id) and published by rename, so concurrent jobs never see half a copy. A
job records that it uses an image; the Epilog releases it, and an entry no job uses stays for the
user's next job, ` + manDefault("cache.keep_warm") + ` after its last use. Room is given back before
anyone needs it: whenever a Prolog, Epilog or sweep finds less than ` + manDefault("cache.low_water") + `
free on the cache's file system (never less than cache.reserve), entries no job uses go, least
recently used first, the site's and every user's alike, until it is free again (each owner's
child evicts its own; root reads none of them); sweep also holds all entries together to
` + manDefault("cache.total_quota") + `. A round that cannot meet the mark is counted (reason
reclaim). Copying stops at the hook's deadline (` + manDefault("prolog.timeout") + `) or after
` + manDefault("cache.stage_timeout") + `, within about a second: the job then uses the image where
it is, and what was copied is kept (.tmp-KEY-partSTAMP, synced) for the next job on the node,
which resumes it, so an image larger than one Prolog can copy lands after a few jobs. gc removes
a cut-off copy untouched for 72 hours. From a striped parallel file system (Lustre, GPFS, BeeGFS,
Ceph) each step is read in several ranges at once, ` + manDefault("cache.read_streams") + `
(4 there, 1 elsewhere, NFS included; or a count). Each user's images stay within
` + manDefault("cache.user_quota") + `, and ` + manDefault("cache.reserve") + ` of the file
system is always left free.

# THE SITE CACHE

An image the site published for every user (it and every directory above it owned by root or
an account in cache.site\_owners, none writable by users, all readable or searchable by owner,
group and others, no ACLs; under cache.site\_dirs if set) is copied once per node into
cache.dir/site, by a child running as cache.site\_user (never root, never a job user), 0444, and
shared by every user's jobs; ` + manDefault("cache.site") + `. A user's own file, world-readable or
not, is staged for her alone. An entry is keyed by the source's path, size, mtime, SIF id,
inode, ctime and owner, so another file at the same path is never taken for it. It stays ` + manDefault("cache.site_keep_warm") + `
after its last job and within ` + manDefault("cache.site_quota") + `. **sifkernel cache warm**
(root) stages cache.prefetch before the first job, within ` + manDefault("cache.prefetch_budget") + `;
its site child takes a directory's *.sif only from a directory of the site's, and prints what it
did not take.

# METRICS

**sifkernel metrics** writes, in Prometheus' text format: sifkernel\_cache\_up,
sifkernel\_cache\_filesystem\_size\_bytes and \_free\_bytes, sifkernel\_cache\_entries and
sifkernel\_cache\_bytes per user (labels uid, user), sifkernel\_cache\_user\_errors, and the
counters the root hooks keep in metrics.dir: sifkernel\_cache\_hits\_total, \_misses\_total,
\_staged\_bytes\_total, \_stage\_seconds\_total, \_stage\_timeouts\_total, \_copies\_resumed\_total,
sifkernel\_site\_cache\_entries, \_bytes, \_hits\_total and \_bytes\_saved\_total (the site cache),
sifkernel\_hook\_runs\_total (label hook) and sifkernel\_hook\_failures\_total (labels hook,
reason). The sifkernel-metrics.timer unit writes them every minute for node\_exporter's textfile
collector (/var/lib/prometheus/node-exporter); enable it with
**systemctl enable --now sifkernel-metrics.timer**. The counters live in
` + manDefault("metrics.dir") + `.
`
}

const manJob = `# EXAMPLES

In an sbatch script, without the hooks:

    eval "$(sifkernel activate)"
    jupyter lab --no-browser --ip=127.0.0.1

or, removing what it made when Jupyter ends:

    sifkernel run -- jupyter lab --no-browser --ip=127.0.0.1
`

func manHooks() string {
	c := config.Default()
	return strings.Replace(manHooksText, "PrologEpilogTimeout=RULE", fmt.Sprintf("PrologEpilogTimeout=%d", int(c.PrologEpilogTimeout().Seconds())), 1) +
		manFailureReasons()
}

// manFailureReasons is the table of metrics.Reasons as a definition list.
func manFailureReasons() string {
	esc := strings.NewReplacer("_", `\_`, "*", `\*`)
	var b strings.Builder
	b.WriteString("# FAILURE REASONS\n\nWhat a hook could not do and carried on from, as the reason label of\n" +
		"**sifkernel\\_hook\\_failures\\_total** (see sifkernel-cache(1), **metrics**) counts it:\n\n")
	for _, r := range metrics.Reasons() {
		fmt.Fprintf(&b, "**%s**\n: %s\n\n", esc.Replace(string(r.Reason)), esc.Replace(r.Means))
	}
	return b.String()
}

const manHooksText = `# SLURM CONFIGURATION

The one binary acts as Prolog, TaskProlog and Epilog; with no command it reads
SLURM\_SCRIPT\_CONTEXT. In slurm.conf (the package ships these lines as
/usr/share/doc/sifkernel/slurm.conf.snippet):

    Prolog=/usr/bin/sifkernel
    Epilog=/usr/bin/sifkernel
    TaskProlog=/usr/bin/sifkernel
    PrologFlags=Alloc
    PrologEpilogTimeout=RULE

PrologEpilogTimeout must be at least prolog.timeout + 10 s: every Prolog and Epilog run ends within
its one deadline, prolog.timeout, and 2 s, whatever users do to their own processes (root kills
a child that runs past it); the rest is slurmd's start of the hook. **sifkernel node** reads
**scontrol show config** and says when PrologEpilogTimeout is lower.

The systemd units sifkernel-sweep-boot.service and sifkernel-sweep.timer run **sifkernel sweep**
at boot and every hour; a tmpfiles.d line creates the cache root at boot.

# FAILURE POLICY

A hook exits 0 for everything a user can cause: a broken kernel.json, a missing or corrupt image,
a full quota, a slow filesystem, a hostile path or link. Those are logged, with the file and the
reason, and the job's kernels use their images in place. Only faults of the node itself, and only
those the site lists in prolog.fail\_node\_on, make the Prolog fail (and Slurm drain the node):
the cache root missing and impossible to create, not root's, or its file system read-only, failing
or gone. A full cache file system, a leftover of any kind, a job id met again are not.

# SECURITY

Root never reads or writes a user's files as root: the Prolog and Epilog run their user part as
the job user (**sifkernel internal**, not for people) with a scrubbed environment and bounded
output. Root works only through directories it has verified are its own (owner root, not a
symbolic link, not writable by others), and never opens a file that could block. Below the cache
root no hook crosses into another file system (a user's FUSE mount), and whatever a job left that
its user's cleanup could not remove, root removes through descriptors, at any depth, within a
budget. Root hooks pass no inherited descriptor to the child; the child makes itself
non-dumpable; root bounds what it takes from the child's report (log lines, memory, counters).
The log file is used only if it is a regular file with one link, owned by root and not writable
by others.
`

func manConfig(example []byte) string {
	var b strings.Builder
	b.WriteString(`# DESCRIPTION

sifkernel reads the site config (/etc/sifkernel/config.toml, or --config, or SIFKERNEL\_CONFIG),
then a user's ~/.config/sifkernel/config.toml for the keys users may set. Unknown keys and values
of the wrong type are errors that name the file and line. Run as root, sifkernel uses a site
config only if root alone can change it and every directory above it. Hooks fall back to the
built-in defaults on a broken config, and say so in the log; commands refuse it.

**sifkernel config show** prints every key with its value and where the value came from.

# EXAMPLE

Every key, with its default and what it does:

`)
	for _, l := range strings.Split(strings.TrimRight(string(example), "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
