package lifecycle

import (
	"context"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/runas"
)

// A deadline is the one end of a hook run (prolog.timeout for the Prolog
// and Epilog, the sweep's budget, cache.prefetch_budget for a warm-up).
// Every child the run starts and every copy a child makes gets only what
// is left of it, so the run ends within the deadline and a little more
// whatever a user does to her own processes: she may SIGSTOP the children
// that run with her uid, and root then kills them when their time is up
// (SIGKILL ends a stopped process too).
//
// The rule, in one place: a child may run until childTail before the end
// (runas reaps a killed child within runas.WaitDelay, and root logs and
// counts after it); a user part stops staging phaseReserve before its own
// kill, and before that leaves phaseReserve for each phase after it, so it
// writes the job's kernels and replies while there is time.
type deadline struct {
	end time.Time
	now func() time.Time
}

const (
	childTail    = runas.WaitDelay + time.Second
	phaseReserve = 2 * time.Second
)

// newDeadline is the end of a run that starts now and may take d.
func newDeadline(now func() time.Time, d time.Duration) deadline {
	return deadline{end: now().Add(d), now: now}
}

// left is what remains of the run.
func (d deadline) left() time.Duration { return d.end.Sub(d.now()) }

// context ends at the deadline.
func (d deadline) context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, d.end)
}

// child is how long a child started now may run before root kills it, at
// most limit (0: no limit of its own); 0 when there is no time for one.
func (d deadline) child(limit time.Duration) time.Duration {
	t := d.left() - childTail
	if limit > 0 {
		t = min(t, limit)
	}
	return max(t, 0)
}

// stage is what a child started now may spend staging, at most limit
// (cache.stage_timeout; 0: no limit of its own), with later phases still
// to run after it in the same hook; 0 when nothing may be staged.
func (d deadline) stage(limit time.Duration, later int) time.Duration {
	t := d.child(0) - time.Duration(later+1)*phaseReserve
	if limit > 0 {
		t = min(t, limit)
	}
	return max(t, 0)
}

// stageBy is stage, with the time that staging ends, for a child's
// request: on the wall clock root and child share (the same host), so
// what the child spends starting (Go's runtime, its config, Apptainer's
// --version, a SIGSTOP from its user) comes out of its budget rather than
// out of root's reserve for the phases after it.
func (d deadline) stageBy(limit time.Duration, later int) (time.Duration, time.Time) {
	b := d.stage(limit, later)
	return b, time.Now().Add(b)
}

// stageContext is a child's staging time: budget from now, ending at until
// when that is set and sooner (see stageBy); a budget of 0 or less has ended
// already (a hook's deadline left nothing), unlike context.WithTimeout's
// callers' "none".
func stageContext(ctx context.Context, budget time.Duration, until time.Time) (context.Context, context.CancelFunc) {
	end := time.Now().Add(max(budget, 0))
	if !until.IsZero() && until.Before(end) {
		end = until
	}
	return context.WithDeadline(ctx, end)
}
