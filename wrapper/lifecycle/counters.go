package lifecycle

import (
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/metrics"
)

// startRun begins counting one root hook run (see metrics).
func (e *Env) startRun(hook string) *metrics.Run { return &metrics.Run{Hook: hook} }

// count adds run to the node's counters, when metrics.dir is set and this
// is root (the TaskProlog and users' commands count nothing). Counting is
// never a reason for a hook to fail: a problem is one warning.
func (e *Env) count(log logrus.FieldLogger, run *metrics.Run) {
	if e.Config.Metrics.Dir == "" || os.Geteuid() != 0 {
		return
	}
	if e.ConfigDefaults {
		run.Fail(metrics.Config)
	}
	if err := metrics.Add(e.Config.Metrics.Dir, *run); err != nil {
		log.Warnf("metrics.dir %s: %v; this run was not counted", e.Config.Metrics.Dir, err)
	}
}

// countStaging adds what a user part staged. The report comes from the job
// user's process: its numbers are the user's to shape, so root counts no
// more than one Prolog can have done: at most max kernels, no image larger
// than the cache file system (fsSize, measured by root; 0: none counted),
// no more bytes in all than that, and no more seconds than the Prolog's
// deadline (prolog.timeout).
func countStaging(run *metrics.Run, r Report, max int, fsSize int64, timeout time.Duration, siteCopied map[string]bool) {
	var bytes int64
	var seconds float64
	limit := timeout.Seconds()
	for i, k := range r.Kernels {
		if i >= max {
			break
		}
		switch {
		case k.Site && siteCopied[k.SiteKey]:
			run.Misses++ // this job's Prolog had the site child copy it
			if k.Bytes > 0 && k.Bytes <= fsSize-bytes {
				bytes += k.Bytes
			}
		case k.Site:
			run.Hits++
			run.SiteHits++
			if k.Bytes > 0 && uint64(k.Bytes) <= uint64(fsSize) {
				run.SiteBytes += uint64(k.Bytes)
			}
		case k.Staged && k.Copied:
			run.Misses++
			if k.Resumed {
				run.Resumed++
			}
			if k.Bytes > 0 && k.Bytes <= fsSize-bytes {
				bytes += k.Bytes
			}
			if k.StageSeconds > 0 && k.StageSeconds <= limit-seconds {
				seconds += k.StageSeconds
			}
		case k.Staged:
			run.Hits++
		case k.TimedOut:
			run.StageTimeouts++
		}
	}
	run.BytesStaged += uint64(bytes)
	run.StageSeconds += seconds
}
