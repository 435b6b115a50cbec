package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// parse reads text as Prometheus does (its own parser, legacy names).
func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus cannot parse the output: %v\n%s", err, text)
	}
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no sample of %s with %q", name, labels)
	return 0
}

func TestTextParsesAsPrometheus(t *testing.T) {
	s := Snapshot{
		Counters: Counters{
			HookRuns:     map[string]uint64{"prolog": 3, "epilog": 2},
			HookFailures: map[string]map[string]uint64{"prolog": {"user_part": 1, "cache_root": 2}},
			Hits:         5, Misses: 2, BytesStaged: 3 << 30, StageSeconds: 1.25, StageTimeouts: 1,
			SiteHits: 7, SiteBytesSaved: 7 << 30,
		},
		Users: []UserUsage{
			{UID: 1002, User: "bob", Entries: 1, Bytes: 4096},
			{UID: 1001, User: `al"i\ce` + "\n", Entries: 2, Bytes: 270553174016},
		},
		UserErrors: 1, CacheSize: 1 << 40, CacheFree: 1 << 39, CacheUp: true,
		SiteEntries: 1, SiteBytes: 1 << 30,
	}
	var b bytes.Buffer
	testkit.Must(t, s.WriteText(&b))
	fams := parse(t, b.Bytes())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sifkernel_cache_up", nil, 1},
		{"sifkernel_cache_filesystem_size_bytes", nil, 1 << 40},
		{"sifkernel_cache_filesystem_free_bytes", nil, 1 << 39},
		{"sifkernel_cache_entries", []string{"uid", "1001", "user", "al\"i\\ce\n"}, 2},
		{"sifkernel_cache_bytes", []string{"uid", "1001"}, 270553174016},
		{"sifkernel_cache_bytes", []string{"user", "bob"}, 4096},
		{"sifkernel_cache_user_errors", nil, 1},
		{"sifkernel_cache_hits_total", nil, 5},
		{"sifkernel_cache_misses_total", nil, 2},
		{"sifkernel_cache_staged_bytes_total", nil, 3 << 30},
		{"sifkernel_cache_stage_seconds_total", nil, 1.25},
		{"sifkernel_cache_stage_timeouts_total", nil, 1},
		{"sifkernel_site_cache_entries", nil, 1},
		{"sifkernel_site_cache_bytes", nil, 1 << 30},
		{"sifkernel_site_cache_hits_total", nil, 7},
		{"sifkernel_site_cache_bytes_saved_total", nil, 7 << 30},
		{"sifkernel_hook_runs_total", []string{"hook", "prolog"}, 3},
		{"sifkernel_hook_runs_total", []string{"hook", "epilog"}, 2},
		{"sifkernel_hook_failures_total", []string{"hook", "prolog", "reason", "cache_root"}, 2},
		{"sifkernel_hook_failures_total", []string{"hook", "prolog", "reason", "user_part"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams["sifkernel_hook_runs_total"].GetType() != dto.MetricType_COUNTER || fams["sifkernel_cache_bytes"].GetType() != dto.MetricType_GAUGE {
		t.Error("metric types are wrong")
	}
	// An empty snapshot parses too (no users, no runs yet).
	b.Reset()
	testkit.Must(t, Snapshot{}.WriteText(&b))
	parse(t, b.Bytes())
}

func rootDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "the counters live in a directory root alone may change: run as root")
	}
	dir := filepath.Join(testkit.SharedDir(t), "metrics")
	return dir
}

// TestConcurrentAddsLoseNothing: hooks of many jobs end at once on a node;
// every run is counted once.
func TestConcurrentAddsLoseNothing(t *testing.T) {
	dir := rootDir(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Run{Hook: "prolog", Hits: 1, BytesStaged: 10}
			if i%4 == 0 {
				r.Fail("user_part")
				r.Fail("user_part") // counted once per run
			}
			if err := Add(dir, r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c, err := Read(dir)
	testkit.Must(t, err)
	if c.HookRuns["prolog"] != 40 || c.Hits != 40 || c.BytesStaged != 400 || c.HookFailures["prolog"]["user_part"] != 10 {
		t.Errorf("counters = %+v", c)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".counters.json.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestUntrustedDirIsRefused: a counters directory a user can write is not
// used (a user could otherwise make root write through a link of theirs).
func TestUntrustedDirIsRefused(t *testing.T) {
	base := rootDir(t)
	testkit.Must(t, os.MkdirAll(base, 0o755))
	loose := filepath.Join(base, "loose")
	testkit.Must(t, os.Mkdir(loose, 0o777))
	testkit.Must(t, os.Chmod(loose, 0o777))
	if err := Add(loose, Run{Hook: "prolog"}); err == nil {
		t.Error("counted into a world-writable directory")
	}
	link := filepath.Join(base, "link")
	testkit.Must(t, os.Symlink(loose, link))
	testkit.Must(t, os.Lchown(link, 1234, 1234))
	if err := Add(link, Run{Hook: "prolog"}); err == nil {
		t.Error("counted through a user's symbolic link")
	}
	// A damaged counters file starts the totals again instead of failing.
	good := filepath.Join(base, "good")
	testkit.Must(t, Add(good, Run{Hook: "epilog"}))
	testkit.Must(t, os.WriteFile(filepath.Join(good, "counters.json"), []byte(`{"hook_runs": {"epi`), 0o644))
	testkit.Must(t, Add(good, Run{Hook: "epilog"}))
	c, err := Read(good)
	testkit.Must(t, err)
	if c.HookRuns["epilog"] != 1 {
		t.Errorf("after a damaged file: %+v", c)
	}
}

func TestWriteTextfileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	s := Snapshot{CacheUp: true}
	testkit.Must(t, s.WriteTextfile(dir))
	b, err := os.ReadFile(filepath.Join(dir, "sifkernel.prom"))
	testkit.Must(t, err)
	parse(t, b)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasSuffix(ents[0].Name(), ".prom") {
		t.Errorf("textfile dir holds %v", ents)
	}
	if err := s.WriteTextfile(filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing directory")
	}
}

// BenchmarkAdd is what counting adds to the end of each Prolog, Epilog and
// sweep: the trusted walk to metrics.dir, the lock, a read, a write and a
// rename (root only).
func BenchmarkAdd(b *testing.B) {
	if os.Geteuid() != 0 {
		testkit.Skip(b, "root only")
	}
	dir := filepath.Join(testkit.SharedDir(b), "metrics")
	r := Run{Hook: "prolog", Hits: 2, Misses: 1, BytesStaged: 1 << 30, StageSeconds: 2.5}
	r.Fail("user_part")
	for b.Loop() {
		if err := Add(dir, r); err != nil {
			b.Fatal(err)
		}
	}
}
