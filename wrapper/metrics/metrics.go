// Package metrics keeps a node's hook counters and writes the node's cache
// state and those counters in Prometheus' text format, for node_exporter's
// textfile collector (`sifkernel metrics --textfile DIR`).
//
// The counters live in one small JSON file in a directory root alone may
// change (metrics.dir, default /var/lib/sifkernel), updated under a lock by
// the root hooks (Prolog, Epilog, sweep) at the end of each run: a read, a
// write and a rename of a few hundred bytes. The TaskProlog, which runs for
// every task, counts nothing.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sys/unix"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Counters are a node's totals since the counters file was made.
type Counters struct {
	HookRuns      map[string]uint64            `json:"hook_runs"`     // by hook
	HookFailures  map[string]map[string]uint64 `json:"hook_failures"` // by hook, then reason
	Hits          uint64                       `json:"hits"`          // a kernel's image was in the cache
	Misses        uint64                       `json:"misses"`        // a kernel's image was copied in
	BytesStaged   uint64                       `json:"bytes_staged"`
	StageSeconds  float64                      `json:"stage_seconds"`
	StageTimeouts uint64                       `json:"stage_timeouts"`
	// SiteHits counts kernels that used the site cache's copy of an image
	// another job had staged; SiteBytesSaved the bytes those did not copy.
	SiteHits       uint64 `json:"site_hits"`
	SiteBytesSaved uint64 `json:"site_bytes_saved"`
	// CopiesResumed counts copies that finished what an earlier one, cut
	// off by its deadline, had begun.
	CopiesResumed uint64 `json:"copies_resumed"`
}

// Run is what one hook run adds to the counters.
type Run struct {
	Hook          string
	Failures      []Reason // each counted once
	Hits, Misses  uint64
	BytesStaged   uint64
	StageSeconds  float64
	StageTimeouts uint64
	SiteHits      uint64
	SiteBytes     uint64 // saved by site hits
	Resumed       uint64 // copies that finished a cut-off one
}

// Fail records a reason the run failed at something (it still exits 0
// unless a node fault was opted in to: see the failure policy).
func (r *Run) Fail(reason Reason) {
	if !slices.Contains(r.Failures, reason) {
		r.Failures = append(r.Failures, reason)
	}
}

const (
	countersFile = "counters.json"
	lockFile     = "counters.lock"
	// maxFile bounds what a read takes in: the file is root's, but a
	// bug or a full disk must not make a hook read without end.
	maxFile = 1 << 20
)

// Add adds r to the counters in dir, a directory root alone may change
// (created 0755 if missing; see fsx.OpenTrustedDir), under an exclusive
// lock, replacing the file atomically (fsx.WriteFileIn, through the
// directory's descriptor) so a reader never sees half of it.
func Add(dir string, r Run) error {
	root, err := fsx.OpenTrustedDir(dir, true, 0o755)
	if err != nil {
		return err
	}
	defer root.Close()
	lock, err := root.OpenFile(lockFile, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s/%s: %w", dir, lockFile, err)
	}
	c, err := read(root, dir)
	if err != nil {
		return err
	}
	c.add(r)
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// Volatile: a crash may cost the totals (read starts them again, as
	// Prometheus counters may), not two fsyncs at the end of every hook.
	if err := fsx.WriteFileIn(root, countersFile, data, 0o644, fsx.Volatile); err != nil {
		return fmt.Errorf("in %s: %w", dir, err)
	}
	return nil
}

// Read returns the counters in dir; none yet is all zeros.
func Read(dir string) (Counters, error) {
	root, err := fsx.OpenTrustedDir(dir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Counters{}.normal(), nil
	}
	if err != nil {
		return Counters{}, err
	}
	defer root.Close()
	return read(root, dir)
}

func read(root *os.Root, dir string) (Counters, error) {
	var c Counters
	f, err := root.OpenFile(countersFile, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return c.normal(), nil
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		// A file cut short by a full disk is replaced, not a reason to
		// stop counting: the totals start again, as counters may.
		return Counters{}.normal(), nil
	}
	return c.normal(), nil
}

func (c Counters) normal() Counters {
	if c.HookRuns == nil {
		c.HookRuns = map[string]uint64{}
	}
	if c.HookFailures == nil {
		c.HookFailures = map[string]map[string]uint64{}
	}
	return c
}

func (c *Counters) add(r Run) {
	c.HookRuns[r.Hook]++
	for _, reason := range r.Failures {
		if c.HookFailures[r.Hook] == nil {
			c.HookFailures[r.Hook] = map[string]uint64{}
		}
		c.HookFailures[r.Hook][string(reason)]++
	}
	c.Hits += r.Hits
	c.Misses += r.Misses
	c.BytesStaged += r.BytesStaged
	c.StageSeconds += r.StageSeconds
	c.StageTimeouts += r.StageTimeouts
	c.SiteHits += r.SiteHits
	c.SiteBytesSaved += r.SiteBytes
	c.CopiesResumed += r.Resumed
}

// UserUsage is one user's part of the node cache.
type UserUsage struct {
	UID     int
	User    string // the name, or the uid where the user database has none
	Entries int
	Bytes   int64
}

// Snapshot is everything `sifkernel metrics` reports.
type Snapshot struct {
	Counters Counters
	Users    []UserUsage
	// UserErrors counts users whose cache could not be read.
	UserErrors int
	// CacheFree and CacheSize are the cache file system's, in bytes;
	// CacheUp says the cache root was there and verified.
	CacheFree, CacheSize int64
	CacheUp              bool
	// SiteEntries and SiteBytes are the site cache's.
	SiteEntries int
	SiteBytes   int64
}

// WriteText writes s in Prometheus' text exposition format (version 0.0.4),
// through Prometheus' own encoder (expfmt): names, label escaping and
// number formatting are the client libraries', not ours.
func (s Snapshot) WriteText(w io.Writer) error {
	for _, mf := range s.families() {
		if len(mf.Metric) == 0 {
			continue // no user, no hook run yet: the format has no empty family
		}
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return nil
}

// families are the snapshot's metric families, in the order they are written.
func (s Snapshot) families() []*dto.MetricFamily {
	c := s.Counters.normal()
	var out []*dto.MetricFamily
	family := func(name string, typ dto.MetricType, help string) *dto.MetricFamily {
		mf := &dto.MetricFamily{Name: proto(name), Help: proto(help), Type: typ.Enum()}
		out = append(out, mf)
		return mf
	}
	sample := func(mf *dto.MetricFamily, v float64, labels ...string) {
		m := &dto.Metric{}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto(labels[i]), Value: proto(labels[i+1])})
		}
		if mf.GetType() == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: &v}
		} else {
			m.Gauge = &dto.Gauge{Value: &v}
		}
		mf.Metric = append(mf.Metric, m)
	}
	gauge := func(name, help string, v float64) { sample(family(name, dto.MetricType_GAUGE, help), v) }
	counter := func(name, help string, v float64) { sample(family(name, dto.MetricType_COUNTER, help), v) }
	perUser := func(name, help string, v func(UserUsage) float64) {
		mf := family(name, dto.MetricType_GAUGE, help)
		users := slices.Clone(s.Users)
		sort.Slice(users, func(i, j int) bool { return users[i].UID < users[j].UID })
		for _, u := range users {
			sample(mf, v(u), "uid", strconv.Itoa(u.UID), "user", u.User)
		}
	}

	gauge("sifkernel_cache_up", "1 if the node cache root exists and root alone can change it.", b2f(s.CacheUp))
	gauge("sifkernel_cache_filesystem_size_bytes", "Size of the file system that holds the node cache.", float64(s.CacheSize))
	gauge("sifkernel_cache_filesystem_free_bytes", "Free bytes on the file system that holds the node cache.", float64(s.CacheFree))
	perUser("sifkernel_cache_entries", "Images in a user's node cache.", func(u UserUsage) float64 { return float64(u.Entries) })
	perUser("sifkernel_cache_bytes", "Bytes of the images in a user's node cache.", func(u UserUsage) float64 { return float64(u.Bytes) })
	gauge("sifkernel_cache_user_errors", "Users whose node cache could not be read for this scrape.", float64(s.UserErrors))
	gauge("sifkernel_site_cache_entries", "Images in the site cache (one copy for every user of the node).", float64(s.SiteEntries))
	gauge("sifkernel_site_cache_bytes", "Bytes of the images in the site cache.", float64(s.SiteBytes))

	counter("sifkernel_cache_hits_total", "Kernels whose image a Prolog found in the node cache.", float64(c.Hits))
	counter("sifkernel_cache_misses_total", "Kernels whose image a Prolog copied into the node cache.", float64(c.Misses))
	counter("sifkernel_cache_staged_bytes_total", "Bytes Prologs copied into the node cache.", float64(c.BytesStaged))
	counter("sifkernel_cache_stage_seconds_total", "Seconds Prologs spent copying images into the node cache.", c.StageSeconds)
	counter("sifkernel_cache_stage_timeouts_total", "Images not staged because the hook's deadline or cache.stage_timeout came first (what was copied is kept and resumed).", float64(c.StageTimeouts))
	counter("sifkernel_cache_copies_resumed_total", "Copies that finished what an earlier one, cut off by its deadline, had begun.", float64(c.CopiesResumed))
	counter("sifkernel_site_cache_hits_total", "Kernels that used the site cache's copy another job had staged.", float64(c.SiteHits))
	counter("sifkernel_site_cache_bytes_saved_total", "Bytes site cache hits did not copy (a copy per user would have).", float64(c.SiteBytesSaved))

	runs := family("sifkernel_hook_runs_total", dto.MetricType_COUNTER, "Runs of each root hook.")
	for _, h := range sortedKeys(c.HookRuns) {
		sample(runs, float64(c.HookRuns[h]), "hook", h)
	}
	fails := family("sifkernel_hook_failures_total", dto.MetricType_COUNTER, "Things a root hook could not do, by reason (the hook itself exits 0 unless prolog.fail_node_on says otherwise).")
	for _, h := range sortedKeys(c.HookFailures) {
		for _, reason := range sortedKeys(c.HookFailures[h]) {
			sample(fails, float64(c.HookFailures[h][reason]), "hook", h, "reason", reason)
		}
	}
	return out
}

func proto(s string) *string { return &s }

// WriteTextfile writes s as dir/sifkernel.prom, atomically (fsx.WriteFileIn):
// node_exporter's textfile collector never reads half a file, and the
// temporary file's name does not end in .prom. As root, dir must be a
// directory root alone can change, and every directory above it (see
// fsx.OpenTrustedDir); the file is written and renamed through that
// descriptor, so no link or directory a user swaps in is followed.
func (s Snapshot) WriteTextfile(dir string) error {
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		return err
	}
	var root *os.Root
	var err error
	if os.Geteuid() == 0 {
		root, err = fsx.OpenTrustedDir(dir, false, 0)
	} else {
		root, err = os.OpenRoot(dir)
	}
	if err != nil {
		return fmt.Errorf("--textfile %s: %w", dir, err)
	}
	defer root.Close()
	// Written anew at every run: a crash costs one scrape, not two fsyncs a hook.
	if err := fsx.WriteFileIn(root, "sifkernel.prom", []byte(b.String()), 0o644, fsx.Volatile); err != nil {
		return fmt.Errorf("in %s: %w", dir, err)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
