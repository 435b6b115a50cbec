package wrapper

import (
	"os"

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
		run.Fail("config")
	}
	if err := metrics.Add(e.Config.Metrics.Dir, *run); err != nil {
		log.Warnf("metrics.dir %s: %v; this run was not counted", e.Config.Metrics.Dir, err)
	}
}

// countStaging adds what a user part staged. The report comes from the job
// user's process: its numbers are the user's to shape, so they are bounded
// by what one Prolog can do (max kernels, a day of copying, 16 TiB an image)
// before they are added.
func countStaging(run *metrics.Run, r Report, max int) {
	for i, k := range r.Kernels {
		if i >= max {
			break
		}
		switch {
		case k.Staged && k.Copied:
			run.Misses++
			if k.Bytes > 0 && k.Bytes <= 1<<44 {
				run.BytesStaged += uint64(k.Bytes)
			}
			if k.StageSeconds > 0 && k.StageSeconds < 86400 {
				run.StageSeconds += k.StageSeconds
			}
		case k.Staged:
			run.Hits++
		case k.TimedOut:
			run.StageTimeouts++
		}
	}
}
