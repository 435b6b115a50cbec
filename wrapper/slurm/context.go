// Package slurm reads the context Slurm gives its hooks, writes TaskProlog
// output, and asks squeue which jobs still run on a node. It never runs a
// Slurm command from a Prolog or Epilog: slurmctld may be busy or down.
package slurm

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strconv"
)

// Hook names, as SLURM_SCRIPT_CONTEXT gives them.
const (
	Prolog     = "prolog_slurmd"
	Epilog     = "epilog_slurmd"
	TaskProlog = "prolog_task"
)

// Context is a job as a hook sees it.
type Context struct {
	Script    string `json:"script,omitempty"` // SLURM_SCRIPT_CONTEXT
	JobID     string `json:"job_id"`
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	User      string `json:"user,omitempty"`
	Partition string `json:"partition,omitempty"`
	Node      string `json:"node,omitempty"`
}

// jobID is a Slurm job id: digits only (an array task has its own numeric
// id in SLURM_JOB_ID). Anything else (such as "../x") is refused.
var jobID = regexp.MustCompile(`^[0-9]{1,20}$`)

// ValidJobID reports why id is not a Slurm job id. It is the one rule for
// job ids everywhere: hooks, --job flags, refs and job directories, so an
// id is never a path.
func ValidJobID(id string) error {
	if !jobID.MatchString(id) {
		return fmt.Errorf("job id %s is not a Slurm job id (digits only)", strconv.Quote(id))
	}
	return nil
}

// FromEnv reads the hook context. lookup nil means os.LookupEnv. Job id, uid
// and gid are required and checked; the rest may be missing.
func FromEnv(lookup func(string) (string, bool)) (Context, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return v }
	c := Context{
		Script: get("SLURM_SCRIPT_CONTEXT"), JobID: get("SLURM_JOB_ID"), User: get("SLURM_JOB_USER"),
		Partition: get("SLURM_JOB_PARTITION"), Node: get("SLURMD_NODENAME"),
	}
	if err := ValidJobID(c.JobID); err != nil {
		return c, err
	}
	var err error
	if c.UID, err = id(get, "SLURM_JOB_UID"); err != nil {
		return c, err
	}
	if c.GID, err = id(get, "SLURM_JOB_GID"); err != nil {
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
