package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/cache"
	"github.com/sifkernel/sifkernel/wrapper/metrics"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
	"github.com/sifkernel/sifkernel/wrapper/untrusted"
)

// usage is the calling user's part of the node cache.
func (e *Env) usage() (Usage, error) {
	ch, err := e.OpenUserCache(0)
	if err != nil {
		return Usage{}, err
	}
	entries, err := ch.Entries()
	if err != nil {
		return Usage{}, err
	}
	u := Usage{Entries: len(entries)}
	for _, en := range entries {
		u.Bytes += en.Size
	}
	if d, err := ch.Usage(); err == nil {
		u.Size, u.Free = int64(d.Total), int64(d.Free)
	}
	return u, nil
}

// Metrics gathers what `sifkernel metrics` reports: the node's counters,
// the cache file system's size, and each user's part of the cache. As root
// it asks each user's own process for that user's part (root reads no
// user's directory); as a user it reports only that user's part.
func (e *Env) Metrics(ctx context.Context) (metrics.Snapshot, error) {
	var s metrics.Snapshot
	var err error
	if d := e.Config.Metrics.Dir; d != "" {
		if s.Counters, err = metrics.Read(d); err != nil {
			return s, err
		}
	}
	if os.Geteuid() != 0 {
		u, err := e.usage()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s, err
		}
		s.CacheUp = err == nil
		s.CacheSize, s.CacheFree = u.Size, u.Free
		name := strconv.Itoa(os.Getuid())
		if usr, err := e.LookupUser(os.Getuid()); err == nil {
			name = usr.Name
		}
		s.Users = append(s.Users, metrics.UserUsage{UID: os.Getuid(), User: name, Entries: u.Entries, Bytes: u.Bytes})
		return s, nil
	}
	tree, err := cache.OpenTree(e.Config.Cache.Dir, false)
	if err != nil {
		e.Log.Warnf("metrics: %v", err)
		return s, nil // sifkernel_cache_up 0 says it
	}
	defer tree.Close()
	s.CacheUp = true
	if s.CacheSize, s.CacheFree, err = tree.Filesystem(); err != nil {
		e.Log.Warnf("metrics: %v", err)
	}
	if site := e.site(); site != nil {
		if s.SiteEntries, s.SiteBytes, err = tree.SiteUsage(site.user.UID); err != nil {
			e.Log.Warnf("metrics: site cache: %v", err)
		}
	}
	users, errs := tree.UserDirs()
	s.UserErrors = len(errs)
	uids := make([]int, 0, len(users))
	for uid := range users {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	for _, uid := range uids {
		u := e.userOrNumeric(uid, users[uid].GID)
		var got Usage
		reply, err := e.asUser(ctx, u, slurm.Context{UID: uid, GID: u.GID}, 10*time.Second, ChildRequest{Usage: &UsageOptions{}})
		if err == nil && reply.Usage == nil {
			err = errors.New("its child printed no usage")
		}
		if err == nil {
			got = *reply.Usage
			err = plausible(got, s.CacheSize)
		}
		if err != nil {
			e.Log.Warnf("metrics: uid %d: %s", uid, untrusted.String(err.Error())) // the child's words
			s.UserErrors++
			continue
		}
		s.Users = append(s.Users, metrics.UserUsage{UID: uid, User: u.Name, Entries: got.Entries, Bytes: got.Bytes})
	}
	return s, nil
}

// maxUsageEntries is more entries than one user's part of a node cache can
// hold (each is an image of a megabyte or more).
const maxUsageEntries = 1 << 20

// plausible checks a user's usage as the user's process reported it: the
// user can trace that process and make it print anything, so numbers no
// cache could hold (negative, more bytes than the file system has) are not
// reported at all.
func plausible(u Usage, fsSize int64) error {
	if u.Entries < 0 || u.Entries > maxUsageEntries || u.Bytes < 0 || (fsSize > 0 && u.Bytes > fsSize) {
		return fmt.Errorf("implausible usage reported (%d entries, %d bytes; the file system holds %d): not counted", u.Entries, u.Bytes, fsSize)
	}
	return nil
}
