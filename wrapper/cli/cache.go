package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// Schemas of the cache commands' JSON.
const (
	SchemaCacheList   = "sifkernel/cache-list/v1"
	SchemaCacheGC     = "sifkernel/cache-gc/v1"
	SchemaCacheVerify = "sifkernel/cache-verify/v1"
	SchemaCacheWarm   = "sifkernel/cache-warm/v1"
)

func (e *env) cacheCommand() *cli.Command {
	return &cli.Command{
		Name:   "cache",
		Usage:  "inspect and clean your part of the node-local image cache",
		Action: noSubcommand,
		Subcommands: []*cli.Command{
			{
				Name: "ls", Aliases: []string{"list"}, Usage: "list staged images, with size, source, last use and refs",
				Flags:  []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error { return e.cacheList(c.Bool("json")) },
			},
			{
				Name:  "gc",
				Usage: "remove unused images (older than cache.keep_warm), stale copies and refs of ended jobs",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "say what would be removed"},
					&cli.BoolFlag{Name: "all", Usage: "remove every image no job uses, however recent"},
					&cli.StringSliceFlag{Name: "job", Usage: "release the refs of job `ID` first (repeatable)"},
					jsonFlag,
				},
				Action: func(c *cli.Context) error {
					var jobs []slurm.JobID
					for _, j := range c.StringSlice("job") {
						id, err := slurm.ParseJobID(j)
						if err != nil {
							return &UsageError{Err: err}
						}
						jobs = append(jobs, id)
					}
					return e.cacheGC(cache.GCOptions{DryRun: c.Bool("dry-run"), All: c.Bool("all"), Jobs: jobs, Now: e.Now()}, c.Bool("json"))
				},
			},
			{
				Name:      "warm",
				Usage:     "root: stage site images (IMAGE..., else cache.prefetch) into the site cache before any job needs them",
				ArgsUsage: "[IMAGE|DIR...]",
				Description: "Runs the site user's child (cache.site_user, never root) on each image or\n" +
					"directory of *.sif, within cache.prefetch_budget. Only the site's own images and\n" +
					"directories are taken (owned by root or cache.site_owners all the way, no user\n" +
					"may change them, every user may read them); the rest are reported as not taken.\n" +
					"The sifkernel-cache-warm unit runs it at boot.",
				Flags:  []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error { return e.cacheWarm(c, c.Args().Slice(), c.Bool("json")) },
			},
			{
				Name: "verify", Usage: "re-check every staged image (size, SIF header, sha256 if recorded); exit 1 on damage",
				Flags:  []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error { return e.cacheVerify(c.Bool("json")) },
			},
		},
	}
}

func (e *env) cacheList(asJSON bool) error {
	ch, err := e.openCache(0)
	if err != nil {
		return err
	}
	entries, err := ch.Entries()
	if err != nil {
		return err
	}
	u, err := ch.Usage()
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []cache.Entry{}
	}
	type siteList struct {
		Dir     string        `json:"dir"`
		Entries []cache.Entry `json:"entries"`
	}
	var site *siteList
	if sv := e.lifecycle().SiteView(); sv != nil {
		if es, err := sv.Entries(); err == nil {
			site = &siteList{Dir: sv.Dir(), Entries: append([]cache.Entry{}, es...)}
		}
	}
	if asJSON {
		return writeJSON(e.Stdout, struct {
			Schema  string        `json:"schema"`
			Dir     string        `json:"dir"`
			Entries []cache.Entry `json:"entries"`
			Usage   cache.Usage   `json:"usage"`
			Site    *siteList     `json:"site,omitempty"`
		}{SchemaCacheList, ch.Dir(), entries, u, site})
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIZE\tLAST USED\tREFS\tSOURCE")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", en.Key, cache.HumanBytes(en.Size), en.LastUsed.Local().Format("2006-01-02 15:04"),
			dash(strings.Join(en.Refs, ",")), en.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%d images in %s: %s used of a %s quota; %s free (%s kept in reserve)\n",
		len(entries), ch.Dir(), cache.HumanBytes(u.Used), cache.HumanBytes(int64(u.Quota)), cache.HumanBytes(int64(u.Free)), cache.HumanBytes(int64(u.Reserve)))
	if site != nil {
		fmt.Fprintf(e.Stdout, "\nsite images in %s (one copy for every user of this node; public images only):\n", site.Dir)
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tSIZE\tLAST USED\tJOBS\tSOURCE")
		for _, en := range site.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", en.Key, cache.HumanBytes(en.Size), en.LastUsed.Local().Format("2006-01-02 15:04"), len(en.Refs), en.Source)
		}
		return tw.Flush()
	}
	return nil
}

func (e *env) cacheGC(o cache.GCOptions, asJSON bool) error {
	ch, err := e.openCache(0)
	if err != nil {
		return err
	}
	r, err := ch.GC(o)
	if asJSON {
		if jerr := writeJSON(e.Stdout, struct {
			Schema string `json:"schema"`
			DryRun bool   `json:"dry_run"`
			cache.GCReport
		}{SchemaCacheGC, o.DryRun, r}); jerr != nil {
			return jerr
		}
		return err
	}
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(e.Stdout, "released the refs of job %s\n", j)
	}
	for _, k := range r.Entries {
		fmt.Fprintf(e.Stdout, "%s image %s\n", verb, k)
	}
	for _, t := range r.Temps {
		fmt.Fprintf(e.Stdout, "%s stale copy %s\n", verb, t)
	}
	for _, k := range r.Orphans {
		fmt.Fprintf(e.Stdout, "%s orphaned metadata %s.json\n", verb, k)
	}
	fmt.Fprintf(e.Stdout, "%s %s\n", verb, cache.HumanBytes(r.Freed))
	return err
}

func (e *env) cacheVerify(asJSON bool) error {
	ch, err := e.openCache(0)
	if err != nil {
		return err
	}
	start := time.Now()
	checks, err := ch.Verify()
	if err != nil {
		return err
	}
	bad := 0
	for _, c := range checks {
		if !c.OK {
			bad++
		}
	}
	if asJSON {
		err = writeJSON(e.Stdout, struct {
			Schema string        `json:"schema"`
			Images []cache.Check `json:"images"`
			Bad    int           `json:"bad"`
		}{SchemaCacheVerify, checks, bad})
	} else {
		for _, c := range checks {
			if c.OK {
				fmt.Fprintf(e.Stdout, "ok      %s\n", c.Path)
			} else {
				fmt.Fprintf(e.Stdout, "DAMAGED %s: %s\n", c.Path, c.Problem)
			}
		}
		fmt.Fprintf(e.Stdout, "%d images verified in %s: %d damaged\n", len(checks), time.Since(start).Round(time.Millisecond), bad)
	}
	if err == nil && bad > 0 {
		return ErrProblemsFound
	}
	return err
}

func (e *env) cacheWarm(c *cli.Context, images []string, asJSON bool) error {
	r, err := e.lifecycle().Warm(c.Context, images)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(e.Stdout, struct {
			Schema string `json:"schema"`
			lifecycle.SiteReport
		}{SchemaCacheWarm, r}); err != nil {
			return err
		}
	}
	failed := 0
	for _, res := range r.Results {
		if !res.Staged {
			failed++
		}
		if asJSON {
			continue
		}
		switch {
		case !res.Staged:
			fmt.Fprintf(e.Stdout, "%s\t# not taken: %s\n", res.Image, res.Reason)
		case res.Copied:
			fmt.Fprintf(e.Stdout, "%s\t# staged as %s (%s)\n", res.Image, res.Key, cache.HumanBytes(res.Bytes))
		default:
			fmt.Fprintf(e.Stdout, "%s\t# already in the site cache as %s\n", res.Image, res.Key)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images not in the site cache", failed, len(r.Results))
	}
	return nil
}
