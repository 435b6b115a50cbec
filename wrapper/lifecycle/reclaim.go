package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// Reclaim: the node cache keeps what no job uses (keep_warm, hours), and
// gives it back before anyone needs the room. Whenever a hook finds less
// free space on the cache file system than cache.low_water (never less
// than cache.reserve), and at every sweep, root asks each user's child and
// the site child for their idle entries (their own directories: root reads
// none), takes the least recently used across all of them until the mark
// is met (and, at sweep, until all entries together fit cache.total_quota),
// and asks each owner's child to evict its share. Two short children per
// owner, and only when the disk is short: the common Prolog pays one statfs.
//
// What an owner's child reports is its owner's to shape (she may write her
// own metadata): a user who says her entries are newer than they are keeps
// hers longer, within her quota, and the round evicts others' first; she
// cannot make root remove anything in use or outside the cache. Each list
// is bounded (maxIdleReported) and each child bounded by the deadline.

// ReclaimOptions ask an owner's child (a user's, or with Site the site
// user's) about its idle entries: with Bytes 0, list them; else evict
// those last used before Before, least recently used first, until Bytes
// are freed.
type ReclaimOptions struct {
	Site   bool      `json:"site,omitempty"`
	Before time.Time `json:"before,omitzero"`
	Bytes  int64     `json:"bytes,omitempty"`
}

// ReclaimReport is an owner's child's reply.
type ReclaimReport struct {
	Bytes   int64        `json:"bytes"` // all the owner's entries
	Idle    []cache.Idle `json:"idle,omitempty"`
	Evicted int          `json:"evicted,omitempty"`
	Freed   int64        `json:"freed,omitempty"`
}

// maxIdleReported bounds the idle entries one owner reports: the oldest
// this many are all a round could want of one owner.
const maxIdleReported = 256

// serveReclaim is the child's side, as the owner.
func (e *Env) serveReclaim(o ReclaimOptions) (ReclaimReport, error) {
	var ch *cache.Cache
	var err error
	if o.Site {
		ch, err = e.openSiteCache(nil)
	} else {
		ch, err = e.OpenUserCache(0)
	}
	if err != nil {
		return ReclaimReport{}, err
	}
	if o.Bytes <= 0 {
		all, idle, err := ch.Idle(maxIdleReported)
		return ReclaimReport{Bytes: all, Idle: idle}, err
	}
	n, freed, err := ch.EvictIdle(o.Before, o.Bytes)
	return ReclaimReport{Evicted: n, Freed: freed}, err
}

// owner is whose entries a reclaim round looks at.
type owner struct {
	user slurm.User
	site bool
	rep  ReclaimReport
}

func (o owner) String() string {
	if o.site {
		return "the site cache"
	}
	return fmt.Sprintf("uid %d", o.user.UID)
}

// belowLowWater is how far free bytes are below the low-water mark
// (cache.low_water, never less than cache.reserve) of a file system of
// size bytes; 0 or less when they are not.
func (e *Env) belowLowWater(size, free int64) int64 {
	c := e.Config.Cache
	return int64(max(c.LowWater.Of(uint64(size)), c.Reserve.Of(uint64(size)))) - free
}

// maxReclaimPasses bounds the passes of one round: each takes the least
// recently used entries not yet asked for, until root's own statfs says the
// mark is met (an owner's child may free less than its list promised).
const maxReclaimPasses = 3

// reclaim is one round (see the top of this file) within budget; withQuota
// enforces cache.total_quota too (sweep). It logs what it did and counts a
// round that fell short.
func (e *Env) reclaim(ctx context.Context, log logrus.FieldLogger, run *metrics.Run, tree *cache.Tree, budget time.Duration, withQuota bool) {
	size, free0, err := tree.Filesystem() // the one statfs a hook pays when the disk has room
	if err != nil || size <= 0 {
		return
	}
	need := e.belowLowWater(size, free0)
	if need <= 0 && !withQuota {
		return
	}
	dl := newDeadline(e.Now, budget)
	ctx, cancel := dl.context(ctx)
	defer cancel()
	owners := e.reclaimOwners(tree)
	var all int64
	var errs []error
	for i := range owners {
		rep, err := e.askOwner(ctx, tree, owners[i], dl, ReclaimOptions{Site: owners[i].site})
		if err == nil {
			err = plausibleIdle(rep)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", owners[i], untrusted.String(err.Error())))
			continue
		}
		// What an owner says it holds counts for the total at most as
		// much as its own quota allows: a lie buys no more than the truth.
		rep.Bytes = min(rep.Bytes, int64(e.ownerQuota(owners[i], size)))
		owners[i].rep = rep
		all += rep.Bytes
	}
	overQuota := func(freed int64) int64 {
		q := int64(e.Config.Cache.TotalQuota.Of(uint64(size)))
		if !withQuota || q <= 0 {
			return 0
		}
		return all - freed - q
	}
	need = max(need, overQuota(0))
	if need <= 0 {
		logErrs(log, errs)
		return
	}
	first := need
	var freed int64
	evicted := 0
	for pass := 0; pass < maxReclaimPasses && need > 0; pass++ {
		shares := reclaimShares(owners, need)
		asked := false
		for i, s := range shares {
			if s.bytes <= 0 {
				continue
			}
			asked = true
			owners[i].rep.Idle = dropShare(owners[i].rep.Idle, s)
			rep, err := e.askOwner(ctx, tree, owners[i], dl, ReclaimOptions{Site: owners[i].site, Before: s.before, Bytes: s.bytes})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s", owners[i], untrusted.String(err.Error())))
				continue
			}
			evicted += max(rep.Evicted, 0)
		}
		if !asked {
			break
		}
		// Root's own measure, not the children's word.
		_, free, err := tree.Filesystem()
		if err != nil {
			break
		}
		freed = free - free0
		need = max(e.belowLowWater(size, free), overQuota(freed))
	}
	logErrs(log, errs)
	log.Infof("reclaim: %s needed; %d idle entries evicted, %s free again", cache.HumanBytes(first), evicted, cache.HumanBytes(max(freed, 0)))
	if need > 0 {
		run.Fail(metrics.Reclaim)
		log.Warnf("reclaim: still %s short of cache.low_water / cache.total_quota: what is left is in use, or the round ran out of time", cache.HumanBytes(need))
	}
}

// ownerQuota is the most an owner's entries may take: cache.site_quota or
// cache.user_quota of a file system of size bytes (its size when unset).
func (e *Env) ownerQuota(o owner, size int64) uint64 {
	q := e.Config.Cache.UserQuota
	if o.site {
		q = e.Config.Cache.SiteQuota
	}
	if n := q.Of(uint64(size)); n > 0 {
		return n
	}
	return uint64(size)
}

// dropShare removes from idle (least recently used first) the entries a
// share asked for, so a later pass takes the next ones.
func dropShare(idle []cache.Idle, s share) []cache.Idle {
	var got int64
	i := 0
	for i < len(idle) && idle[i].LastUsed.Before(s.before) && got < s.bytes {
		got += idle[i].Size
		i++
	}
	return idle[i:]
}

func logErrs(log logrus.FieldLogger, errs []error) {
	for i, err := range errs {
		if i == maxLoggedWarnings {
			log.Warnf("reclaim: %d more owners failed", len(errs)-i)
			break
		}
		log.Warnf("reclaim: %v", err)
	}
}

// share is what a round asks of one owner: its idle entries last used
// before before, up to bytes.
type share struct {
	before time.Time
	bytes  int64
}

// reclaimShares takes idle entries across owners, least recently used
// first, until need bytes are covered, and says what each owner gives.
func reclaimShares(owners []owner, need int64) []share {
	type cand struct {
		owner int
		idle  cache.Idle
	}
	var all []cand
	for i, o := range owners {
		for _, id := range o.rep.Idle {
			all = append(all, cand{i, id})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].idle.LastUsed.Before(all[j].idle.LastUsed) })
	shares := make([]share, len(owners))
	var got int64
	for _, c := range all {
		if got >= need {
			break
		}
		s := &shares[c.owner]
		s.before = c.idle.LastUsed.Add(time.Nanosecond)
		s.bytes += c.idle.Size
		got += c.idle.Size
	}
	return shares
}

// reclaimOwners are the users with a directory in the cache and, when the
// site cache is on, the site.
func (e *Env) reclaimOwners(tree *cache.Tree) []owner {
	dirs, _ := tree.UserDirs()
	uids := make([]int, 0, len(dirs))
	for uid := range dirs {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	var out []owner
	for _, uid := range uids {
		out = append(out, owner{user: e.userOrNumeric(uid, dirs[uid].GID)})
	}
	if s := e.site(); s != nil {
		out = append(out, owner{user: s.user, site: true})
	}
	return out
}

// reclaimChildLimit bounds one owner's child: it lists or evicts a few
// hundred files.
const reclaimChildLimit = 10 * time.Second

// askOwner runs one owner's reclaim child.
func (e *Env) askOwner(ctx context.Context, tree *cache.Tree, o owner, dl deadline, req ReclaimOptions) (ReclaimReport, error) {
	u := o.user
	if o.site {
		if !tree.HasSite() {
			return ReclaimReport{}, nil
		}
		u = childUser(u)
	}
	t := dl.child(reclaimChildLimit)
	if t <= 0 {
		return ReclaimReport{}, errors.New("no time left in this round")
	}
	reply, err := e.asUser(ctx, u, slurm.Context{UID: u.UID, GID: u.GID}, t, ChildRequest{Reclaim: &req})
	if err == nil && reply.Reclaim == nil {
		err = errors.New("its child printed no report")
	}
	if err != nil {
		return ReclaimReport{}, err
	}
	return *reply.Reclaim, nil
}

// plausibleIdle refuses a list no cache could hold: more entries than
// asked for, negative sizes.
func plausibleIdle(r ReclaimReport) error {
	if len(r.Idle) > maxIdleReported || r.Bytes < 0 {
		return fmt.Errorf("implausible report (%d idle entries, %d bytes): not taken", len(r.Idle), r.Bytes)
	}
	for _, id := range r.Idle {
		if id.Size < 0 {
			return errors.New("implausible report (a negative size): not taken")
		}
	}
	return nil
}
