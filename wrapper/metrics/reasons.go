package metrics

// Reason is why a root hook could not do something: the reason label of
// sifkernel_hook_failures_total. Run.Fail takes only these.
type Reason string

// The reasons. Reasons gives each its meaning, for the admin guide's table
// and sifkernel-hooks(8), which the tests hold to it.
const (
	NotAJob     Reason = "not_a_job"
	CacheRoot   Reason = "cache_root"
	CacheFull   Reason = "cache_full"
	Config      Reason = "config"
	JobDir      Reason = "job_dir"
	JobDirOwner Reason = "job_dir_owner"
	UserLookup  Reason = "user_lookup"
	UserDir     Reason = "user_dir"
	UserPart    Reason = "user_part"
	SiteDir     Reason = "site_dir"
	SiteChild   Reason = "site_child"
	SiteEvicted Reason = "site_evicted"
	Deadline    Reason = "deadline"
	Cleanup     Reason = "cleanup"
	Squeue      Reason = "squeue"
	Leftovers   Reason = "leftovers"
	Budget      Reason = "budget"
	Reclaim     Reason = "reclaim"
)

// ReasonInfo is a reason and what it means.
type ReasonInfo struct {
	Reason Reason
	Means  string
}

// Reasons is every reason with its meaning, in the order the docs give.
func Reasons() []ReasonInfo {
	return []ReasonInfo{
		{NotAJob, "the hook's environment names no job (SLURM_JOB_ID, SLURM_JOB_UID or SLURM_JOB_GID missing or malformed)"},
		{CacheRoot, "the cache root failed its checks or could not be made (a node fault: prolog.fail_node_on may name it)"},
		{CacheFull, "the cache's file system is full: the job's kernels use their images in place"},
		{Config, "the site config is unusable: the hook ran on the built-in defaults"},
		{JobDir, "the job's directory could not be made or removed"},
		{JobDirOwner, "the job's directory is not the job user's: the Epilog left it to sweep"},
		{UserLookup, "the job's uid is not in the user database"},
		{UserDir, "the user's cache directory could not be made or failed its checks"},
		{UserPart, "the user part (run as the job user) failed: the job's kernels use their images in place"},
		{SiteDir, "the site cache directory failed its checks: every user stages their own copies"},
		{SiteChild, "the site user's child failed"},
		{SiteEvicted, "site entries were evicted before the job could pin them: those kernels will not start (raise cache.site_quota)"},
		{Deadline, "root killed a child at the hook's deadline, or had no time left to start one (copies are kept and resumed)"},
		{Cleanup, "the Epilog's child (run as the job user) failed: root removed the job's directory itself"},
		{Squeue, "sweep could not ask squeue which jobs run on the node, and removed nothing"},
		{Leftovers, "sweep could not remove something a job left (logged; the next run tries again)"},
		{Budget, "sweep's time ran out before it was done"},
		{Reclaim, "a low-water round (cache.low_water, cache.total_quota) freed less than it needed: what is left is in use, or its owners' children failed or ran out of time"},
	}
}
