package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// A ManPage is one manual page, rendered as roff.
type ManPage struct {
	Name string // the file name: sifkernel-kernel.1
	Roff []byte
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
		{name: "sifkernel", section: 1, usage: app.Usage, extra: manMain},
		{name: "sifkernel-kernel", section: 1, usage: "create, list, check, repair and remove containerized kernelspecs",
			commands: []string{"kernel"}, extra: manKernel + manCheckCodes()},
		{name: "sifkernel-cache", section: 1, usage: "stage images into the node-local cache, look after it, report on it",
			commands: []string{"stage", "cache", "node", "metrics"}, extra: manCache},
		{name: "sifkernel-job", section: 1, usage: "container kernels in job scripts and interactive sessions",
			commands: []string{"activate", "run", "env", "idev"}, extra: manJob},
		{name: "sifkernel-hooks", section: 8, usage: "sifkernel as Slurm Prolog, TaskProlog and Epilog, and its sweep",
			commands: []string{"prolog", "taskprolog", "epilog", "sweep"}, extra: manHooks},
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
		pages = append(pages, ManPage{Name: fmt.Sprintf("%s.%d", g.name, g.section), Roff: md2man.Render([]byte(text))})
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
	return "# SEE ALSO\n\n" + strings.Join(refs, ", ") + "\n\nThe README, with the threat model and the benchmarks: /usr/share/doc/sifkernel/README.md\n"
}

// manCheckCodes is the rule table of kernel check, as the man page's
// definition list.
func manCheckCodes() string {
	esc := strings.NewReplacer("_", `\_`, "*", `\*`, "<", `\<`, ">", `\>`)
	var b strings.Builder
	b.WriteString("# CHECK CODES\n\nWhat **kernel check** reports (severity; whether **kernel fix** repairs it):\n\n")
	for _, r := range kernelspec.Rules() {
		sev := make([]string, len(r.Severities))
		for i, v := range r.Severities {
			sev[i] = string(v)
		}
		fix := ""
		if r.Fixable() {
			fix = ", fixable"
		}
		fmt.Fprintf(&b, "**%s** (%s%s)\n: %s\n\n", r.Code, strings.Join(sev, " / "), fix, esc.Replace(r.Meaning))
	}
	return b.String()
}

const manMain = `# FILES

*/etc/sifkernel/config.toml*
: the site config, root's alone (see **sifkernel.toml**(5)).

*~/.config/sifkernel/config.toml*
: a user's config, for the few keys users may set.

*~/.local/share/jupyter/kernels/NAME/kernel.json*
: the kernels **sifkernel kernel add** writes; never changed by a job.

*/var/tmp/sifkernel*
: the node cache (cache.dir): users/UID holds each user's staged images, jobs/JOB each job's kernels.

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

const manKernel = `# EXAMPLES

    sifkernel kernel add pytorch --image $SCRATCH/images/pytorch.sif
    sifkernel kernel add r --language r --image docker://rocker/r-ver:4.4
    sifkernel kernel check
    sifkernel kernel fix --dry-run

A kernel's kernel.json is written atomically; **--force** and **fix** keep the file they replace as
kernel.json.bak-TIMESTAMP beside it.
`

const manCache = `# THE NODE CACHE

Each user's images are copied once per node into cache.dir/users/UID, under a lock, verified
(size, SIF header and id) and published by rename, so concurrent jobs never see half a copy. A
job records that it uses an image; the Epilog releases it and evicts what no job uses and was not
used for cache.keep\_warm. A copy that takes longer than cache.stage\_timeout is given up: the
job then uses the image where it is.

# METRICS

**sifkernel metrics** writes, in Prometheus' text format: sifkernel\_cache\_up,
sifkernel\_cache\_filesystem\_size\_bytes and \_free\_bytes, sifkernel\_cache\_entries and
sifkernel\_cache\_bytes per user (labels uid, user), sifkernel\_cache\_user\_errors, and the
counters the root hooks keep in metrics.dir: sifkernel\_cache\_hits\_total, \_misses\_total,
\_staged\_bytes\_total, \_stage\_seconds\_total, \_stage\_timeouts\_total,
sifkernel\_hook\_runs\_total (label hook) and sifkernel\_hook\_failures\_total (labels hook,
reason). The sifkernel-metrics.timer unit writes them every minute for node\_exporter's textfile
collector (/var/lib/prometheus/node-exporter); enable it with
**systemctl enable --now sifkernel-metrics.timer**.
`

const manJob = `# EXAMPLES

In an sbatch script, without the hooks:

    eval "$(sifkernel activate)"
    jupyter lab --no-browser --ip=127.0.0.1

or, removing what it made when Jupyter ends:

    sifkernel run -- jupyter lab --no-browser --ip=127.0.0.1
`

const manHooks = `# SLURM CONFIGURATION

The one binary acts as Prolog, TaskProlog and Epilog; with no command it reads
SLURM\_SCRIPT\_CONTEXT. In slurm.conf (the package ships these lines as
/usr/share/doc/sifkernel/slurm.conf.snippet):

    Prolog=/usr/bin/sifkernel
    Epilog=/usr/bin/sifkernel
    TaskProlog=/usr/bin/sifkernel
    PrologFlags=Alloc
    PrologEpilogTimeout=180

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
