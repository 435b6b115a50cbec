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
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

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
}

// Run is what one hook run adds to the counters.
type Run struct {
	Hook          string
	Failures      []string // reasons, each counted once
	Hits, Misses  uint64
	BytesStaged   uint64
	StageSeconds  float64
	StageTimeouts uint64
}

// Fail records a reason the run failed at something (it still exits 0
// unless a node fault was opted in to: see the failure policy).
func (r *Run) Fail(reason string) {
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
// lock, replacing the file by rename so a reader never sees half of it.
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
	tmp := fmt.Sprintf(".%s.%d", countersFile, os.Getpid())
	if err := root.WriteFile(tmp, data, 0o644); err != nil {
		root.Remove(tmp)
		return fmt.Errorf("writing %s/%s: %w", dir, tmp, err)
	}
	return root.Rename(tmp, countersFile)
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
		c.HookFailures[r.Hook][reason]++
	}
	c.Hits += r.Hits
	c.Misses += r.Misses
	c.BytesStaged += r.BytesStaged
	c.StageSeconds += r.StageSeconds
	c.StageTimeouts += r.StageTimeouts
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
}

// WriteText writes s in Prometheus' text exposition format (version 0.0.4).
func (s Snapshot) WriteText(w io.Writer) error {
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, v float64, labels ...string) {
		b.WriteString(name)
		if len(labels) > 0 {
			b.WriteByte('{')
			for i := 0; i < len(labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=\"%s\"", labels[i], escape(labels[i+1]))
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
		b.WriteByte('\n')
	}
	c := s.Counters.normal()
	one := func(name, typ, help string, v float64) {
		family(name, typ, help)
		sample(name, v)
	}
	perUser := func(name, help string, v func(UserUsage) float64) {
		family(name, "gauge", help)
		users := slices.Clone(s.Users)
		sort.Slice(users, func(i, j int) bool { return users[i].UID < users[j].UID })
		for _, u := range users {
			sample(name, v(u), "uid", strconv.Itoa(u.UID), "user", u.User)
		}
	}

	one("sifkernel_cache_up", "gauge", "1 if the node cache root exists and root alone can change it.", b2f(s.CacheUp))
	one("sifkernel_cache_filesystem_size_bytes", "gauge", "Size of the file system that holds the node cache.", float64(s.CacheSize))
	one("sifkernel_cache_filesystem_free_bytes", "gauge", "Free bytes on the file system that holds the node cache.", float64(s.CacheFree))
	perUser("sifkernel_cache_entries", "Images in a user's node cache.", func(u UserUsage) float64 { return float64(u.Entries) })
	perUser("sifkernel_cache_bytes", "Bytes of the images in a user's node cache.", func(u UserUsage) float64 { return float64(u.Bytes) })
	one("sifkernel_cache_user_errors", "gauge", "Users whose node cache could not be read for this scrape.", float64(s.UserErrors))

	one("sifkernel_cache_hits_total", "counter", "Kernels whose image a Prolog found in the node cache.", float64(c.Hits))
	one("sifkernel_cache_misses_total", "counter", "Kernels whose image a Prolog copied into the node cache.", float64(c.Misses))
	one("sifkernel_cache_staged_bytes_total", "counter", "Bytes Prologs copied into the node cache.", float64(c.BytesStaged))
	one("sifkernel_cache_stage_seconds_total", "counter", "Seconds Prologs spent copying images into the node cache.", c.StageSeconds)
	one("sifkernel_cache_stage_timeouts_total", "counter", "Images not staged because cache.stage_timeout passed.", float64(c.StageTimeouts))

	family("sifkernel_hook_runs_total", "counter", "Runs of each root hook.")
	for _, h := range sortedKeys(c.HookRuns) {
		sample("sifkernel_hook_runs_total", float64(c.HookRuns[h]), "hook", h)
	}
	family("sifkernel_hook_failures_total", "counter", "Things a root hook could not do, by reason (the hook itself exits 0 unless prolog.fail_node_on says otherwise).")
	for _, h := range sortedKeys(c.HookFailures) {
		for _, reason := range sortedKeys(c.HookFailures[h]) {
			sample("sifkernel_hook_failures_total", float64(c.HookFailures[h][reason]), "hook", h, "reason", reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTextfile writes s as dir/sifkernel.prom, atomically: node_exporter's
// textfile collector never reads half a file. As root, dir must be a
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
	tmp := fmt.Sprintf(".sifkernel.prom.%d", os.Getpid())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, tmp), err)
	}
	defer root.Remove(tmp)
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, tmp), err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return root.Rename(tmp, "sifkernel.prom")
}

func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(v)
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
