// Package slurm reads the context Slurm gives its hooks, writes TaskProlog
// output, and asks squeue which jobs still run on a node. It never runs a
// Slurm command from a Prolog or Epilog: slurmctld may be busy or down.
package slurm

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The hooks, by the names every log line, metric and command gives them.
const (
	Prolog     = "prolog"
	Epilog     = "epilog"
	TaskProlog = "taskprolog"
	// Sweep is not Slurm's: sifkernel's own cleanup, at boot and from cron,
	// of what jobs that no longer run here left.
	Sweep = "sweep"
)

// hookOf maps SLURM_SCRIPT_CONTEXT to the hook sifkernel acts as there.
var hookOf = map[string]string{
	"prolog_slurmd": Prolog,
	"epilog_slurmd": Epilog,
	"prolog_task":   TaskProlog,
}

// Hook is the hook sifkernel acts as in the Slurm script context script
// (SLURM_SCRIPT_CONTEXT): prolog, epilog or taskprolog; ok is false for a
// context it has nothing to do in (epilog_task, prolog_srun, ...).
func Hook(script string) (name string, ok bool) {
	name, ok = hookOf[script]
	return name, ok
}

// Context is a job as a hook sees it.
type Context struct {
	Script    string `json:"script,omitempty"` // SLURM_SCRIPT_CONTEXT
	JobID     JobID  `json:"job_id"`
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	User      string `json:"user,omitempty"`
	Partition string `json:"partition,omitempty"`
	Node      string `json:"node,omitempty"`
}

// Hook is the hook this context calls for (see the function Hook).
func (c Context) Hook() (string, bool) { return Hook(c.Script) }

// jobID is a Slurm job id: digits only (an array task has its own numeric
// id in SLURM_JOB_ID). Anything else (such as "../x") is refused.
var jobID = regexp.MustCompile(`^[0-9]{1,20}$`)

// JobID is a Slurm job id. Only ParseJobID (and decoding, which calls it)
// makes one, so an id in hand is digits and never a path; the zero JobID
// is "no job".
type JobID struct{ s string }

// ParseJobID is the one rule for job ids everywhere: hooks, --job flags,
// refs and job directories.
func ParseJobID(s string) (JobID, error) {
	if !jobID.MatchString(s) {
		return JobID{}, fmt.Errorf("job id %s is not a Slurm job id (digits only)", strconv.Quote(s))
	}
	return JobID{s}, nil
}

// ValidJobID reports why id is not a Slurm job id (nil if it is).
func ValidJobID(id string) error {
	_, err := ParseJobID(id)
	return err
}

// String is the id's digits; "" for no job.
func (j JobID) String() string { return j.s }

// IsZero says there is no job.
func (j JobID) IsZero() bool { return j.s == "" }

// MarshalText writes the digits ("" for no job).
func (j JobID) MarshalText() ([]byte, error) { return []byte(j.s), nil }

// UnmarshalText parses the digits; "" is no job, anything else not digits
// an error, so a request or reply cannot carry a path as a job id.
func (j *JobID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*j = JobID{}
		return nil
	}
	id, err := ParseJobID(string(b))
	if err != nil {
		return err
	}
	*j = id
	return nil
}

// NodeName is this node's name as Slurm knows it: SLURMD_NODENAME (which
// differs from the host name where several slurmd share a host), else the
// short host name, as slurm.conf's NodeName usually is; from says which.
func NodeName(getenv func(string) string) (name, from string) {
	if getenv != nil {
		if n := getenv(varNodeName); n != "" {
			return n, varNodeName
		}
	}
	h, _ := os.Hostname()
	short, _, _ := strings.Cut(h, ".")
	return short, "hostname"
}

// MatchPartition says whether the job's partition matches one of globs
// (filepath.Match patterns). A job may name several partitions,
// comma-separated; Slurm gives the one it runs in, but a list matches when
// any of its members does. An empty partition matches nothing.
func MatchPartition(globs []string, partition string) bool {
	if partition == "" {
		return false
	}
	for _, p := range strings.Split(partition, ",") {
		for _, g := range globs {
			if ok, _ := filepath.Match(g, strings.TrimSpace(p)); ok {
				return true
			}
		}
	}
	return false
}

// FromEnv reads the hook context. lookup nil means os.LookupEnv. Job id, uid
// and gid are required and checked; the rest may be missing.
func FromEnv(lookup func(string) (string, bool)) (Context, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return v }
	c := Context{
		Script: get(VarScriptContext), User: get(varJobUser),
		Partition: get(varPartition), Node: get(varNodeName),
	}
	var err error
	if c.JobID, err = ParseJobID(get(VarJobID)); err != nil {
		return c, err
	}
	if c.UID, err = id(get, varJobUID); err != nil {
		return c, err
	}
	if c.GID, err = id(get, varJobGID); err != nil {
		return c, err
	}
	return c, nil
}

func id(get func(string) string, k string) (int, error) {
	v := get(k)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<31 {
		return 0, fmt.Errorf("%s=%q is not a uid or gid", k, v)
	}
	return n, nil
}

// User is a job user from the system user database.
type User struct {
	Name   string `json:"name"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Home   string `json:"home"`
	Groups []int  `json:"groups"`
}

// ErrUnknownUser says the user database has no such uid.
var ErrUnknownUser = errors.New("user unknown to the system")

// LookupUser finds uid's name, home and groups: hooks get no HOME.
func LookupUser(uid int) (User, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return User{}, fmt.Errorf("%w: uid %d: %v", ErrUnknownUser, uid, err)
	}
	out := User{Name: u.Username, UID: uid, Home: u.HomeDir}
	out.GID, _ = strconv.Atoi(u.Gid)
	gids, err := u.GroupIds()
	if err != nil {
		return out, fmt.Errorf("groups of %s: %w", u.Username, err)
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			out.Groups = append(out.Groups, n)
		}
	}
	return out, nil
}

// LookupUserName finds a user by name, as LookupUser by uid.
func LookupUserName(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return User{}, fmt.Errorf("%w: %s: %v", ErrUnknownUser, name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return User{}, err
	}
	return LookupUser(uid)
}
