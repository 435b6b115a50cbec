package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/sifkernel/sifkernel/wrapper/jobclean"
	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

// ChildDefaultsEnv, set to "1" in a hook child's environment, says the hook
// runs on the built-in config (the site's is broken). The child must do the
// same: one that cannot read the site config itself (a file only root may
// read) must fail, not quietly use another cache directory.
const ChildDefaultsEnv = jobclean.DefaultsEnv

// ChildCommand is the hidden command a root hook runs as the job user:
// `sifkernel internal KIND REQUEST`, REQUEST being the JSON of a ChildRequest.
const ChildCommand = "internal"

// A ChildRequest is one thing a root hook asks of the sifkernel it runs as
// the job user. Exactly one field is set. It is the whole protocol between
// the two: Args encodes it and ParseChildRequest decodes it, so neither side
// spells a flag by hand.
type ChildRequest struct {
	UserPart *UserPartOptions  `json:"user_part,omitempty"`
	Cleanup  *CleanupOptions   `json:"cleanup,omitempty"`
	Sweep    *UserSweepOptions `json:"sweep,omitempty"`
	Usage    *UsageOptions     `json:"usage,omitempty"`
	// SiteStage runs as the site user (cache.site_user), never a job user.
	SiteStage *SiteStageOptions `json:"site_stage,omitempty"`
	// Reclaim runs as a user, or (Reclaim.Site) as the site user.
	Reclaim *ReclaimOptions `json:"reclaim,omitempty"`
}

// UsageOptions ask for the user's part of the node cache (for metrics).
type UsageOptions struct{}

// Usage is the user's part of the node cache, as the child reports it.
type Usage struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// Size and Free are the cache file system's, for a user's own report
	// (root measures it itself, through the verified cache root).
	Size int64 `json:"size,omitempty"`
	Free int64 `json:"free,omitempty"`
}

// UserSweepOptions say what the user's side of a sweep keeps.
type UserSweepOptions struct {
	Running []slurm.JobID `json:"running"` // jobs squeue lists on this node, sorted
	// JobDirs are the user's leftover jobs/<id> root found: the child
	// empties them, root removes them.
	JobDirs []slurm.JobID `json:"job_dirs,omitempty"`
}

// ChildUserPartKind is the kind of the user part's request: the only child
// that reads the user's own config (user-level settings for the user's
// kernels); the others run on the site's alone.
const ChildUserPartKind = kindUserPart

// The kinds, as they show in `ps` on a node.
const (
	kindUserPart = "user-part"
	kindCleanup  = jobclean.Kind
	kindSweep    = "user-sweep"
	kindUsage    = "user-usage"
	// kindSiteStage runs as the site user (cache.site_user), not a job user.
	kindSiteStage = "site-stage"
	kindReclaim   = "reclaim"
)

func (r ChildRequest) kind() (string, error) {
	var kinds []string
	if r.UserPart != nil {
		kinds = append(kinds, kindUserPart)
	}
	if r.Cleanup != nil {
		kinds = append(kinds, kindCleanup)
	}
	if r.Sweep != nil {
		kinds = append(kinds, kindSweep)
	}
	if r.Usage != nil {
		kinds = append(kinds, kindUsage)
	}
	if r.SiteStage != nil {
		kinds = append(kinds, kindSiteStage)
	}
	if r.Reclaim != nil {
		kinds = append(kinds, kindReclaim)
	}
	if len(kinds) != 1 {
		return "", fmt.Errorf("a child request holds one request, not %d", len(kinds))
	}
	return kinds[0], nil
}

// Args is the request as the argv after the binary: ChildCommand, the kind
// (for people reading `ps`), and the request's JSON.
func (r ChildRequest) Args() ([]string, error) {
	kind, err := r.kind()
	if err != nil {
		return nil, err
	}
	if r.Sweep != nil {
		r.Sweep = &UserSweepOptions{Running: sortedJobs(append([]slurm.JobID{}, r.Sweep.Running...)), JobDirs: sortedJobs(append([]slurm.JobID(nil), r.Sweep.JobDirs...))}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return []string{ChildCommand, kind, string(b)}, nil
}

// ParseChildRequest decodes the arguments after ChildCommand. It refuses
// anything Args would not have written: unknown fields, a kind that does not
// match the request, more or fewer than one request.
func ParseChildRequest(args []string) (ChildRequest, error) {
	var r ChildRequest
	if len(args) != 2 {
		return r, fmt.Errorf("%s takes KIND REQUEST, not %d arguments", ChildCommand, len(args))
	}
	d := json.NewDecoder(bytes.NewReader([]byte(args[1])))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return r, fmt.Errorf("%s %s: %w", ChildCommand, args[0], err)
	}
	if d.More() {
		return r, fmt.Errorf("%s %s: data after the request", ChildCommand, args[0])
	}
	kind, err := r.kind()
	if err != nil {
		return r, err
	}
	if kind != args[0] {
		return r, fmt.Errorf("%s %s: the request is a %s", ChildCommand, args[0], kind)
	}
	return r, nil
}

// ChildReply is what a child prints for root, as JSON: the answer to the
// one request that has one (the user part's report, the user's usage);
// empty for cleanup and sweep. Root decodes it as strictly as the child
// decodes the request (see decodeChildReply): it is the job user's word.
type ChildReply struct {
	UserPart  *Report        `json:"user_part,omitempty"`
	Usage     *Usage         `json:"usage,omitempty"`
	SiteStage *SiteReport    `json:"site_stage,omitempty"`
	Reclaim   *ReclaimReport `json:"reclaim,omitempty"`
}

// Empty says the reply carries nothing (the child prints nothing).
func (r ChildReply) Empty() bool {
	return r.UserPart == nil && r.Usage == nil && r.SiteStage == nil && r.Reclaim == nil
}

// ServeChild carries out a request as the job user and gives the reply
// the child prints for the hook.
func (e *Env) ServeChild(ctx context.Context, r ChildRequest) (ChildReply, error) {
	switch {
	case r.UserPart != nil:
		rep, err := e.UserPart(ctx, *r.UserPart)
		if err != nil {
			return ChildReply{}, err
		}
		return ChildReply{UserPart: &rep}, nil
	case r.Usage != nil:
		u, err := e.usage()
		if err != nil {
			return ChildReply{}, err
		}
		return ChildReply{Usage: &u}, nil
	case r.SiteStage != nil:
		rep, err := e.SiteStage(ctx, *r.SiteStage)
		if err != nil {
			return ChildReply{}, err
		}
		return ChildReply{SiteStage: &rep}, nil
	case r.Reclaim != nil:
		rep, err := e.serveReclaim(*r.Reclaim)
		if err != nil {
			return ChildReply{}, err
		}
		return ChildReply{Reclaim: &rep}, nil
	case r.Cleanup != nil:
		return ChildReply{}, e.Cleanup(*r.Cleanup)
	case r.Sweep != nil:
		_, err := e.SweepUser(*r.Sweep)
		return ChildReply{}, err
	}
	_, err := r.kind()
	return ChildReply{}, err
}

// decodeChildReply reads what the child printed for req: nothing, or the
// one answer req calls for, with no unknown field and nothing after it;
// the user part's report is bounded as it is read (see decodeReport).
func decodeChildReply(data []byte, req ChildRequest) (ChildReply, error) {
	var reply ChildReply
	if len(bytes.TrimSpace(data)) == 0 {
		return reply, nil
	}
	var raw struct {
		UserPart  json.RawMessage `json:"user_part"`
		Usage     json.RawMessage `json:"usage"`
		SiteStage json.RawMessage `json:"site_stage"`
		Reclaim   json.RawMessage `json:"reclaim"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil {
		return reply, err
	}
	if d.More() {
		return reply, errors.New("data after the reply")
	}
	answers := 0
	for _, a := range []json.RawMessage{raw.UserPart, raw.Usage, raw.SiteStage, raw.Reclaim} {
		if a != nil {
			answers++
		}
	}
	strict := func(data json.RawMessage, v any) error {
		u := json.NewDecoder(bytes.NewReader(data))
		u.DisallowUnknownFields()
		return u.Decode(v)
	}
	switch {
	case answers != 1:
	case raw.UserPart != nil && req.UserPart != nil:
		reply.UserPart = &Report{}
		return reply, decodeReport(raw.UserPart, reply.UserPart)
	case raw.Usage != nil && req.Usage != nil:
		reply.Usage = &Usage{}
		return reply, strict(raw.Usage, reply.Usage)
	case raw.Reclaim != nil && req.Reclaim != nil:
		reply.Reclaim = &ReclaimReport{}
		if err := strict(raw.Reclaim, reply.Reclaim); err != nil {
			return reply, err
		}
		return reply, plausibleIdle(*reply.Reclaim)
	case raw.SiteStage != nil && req.SiteStage != nil:
		reply.SiteStage = &SiteReport{}
		if err := strict(raw.SiteStage, reply.SiteStage); err != nil {
			return reply, err
		}
		if len(reply.SiteStage.Results) > maxSiteReport || len(reply.SiteStage.Evicted) > maxRefKeysLogged {
			return reply, errors.New("a site report longer than a site child writes")
		}
		return reply, nil
	}
	kind, _ := req.kind()
	return reply, fmt.Errorf("not the reply to a %s request", kind)
}

func sortedJobs(j []slurm.JobID) []slurm.JobID {
	sort.Slice(j, func(a, b int) bool { return j[a].String() < j[b].String() })
	return j
}

// maxRefKeysLogged bounds the evicted keys a site report may list.
const maxRefKeysLogged = 10000
