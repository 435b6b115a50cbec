package lifecycle

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/slurm"
)

func TestChildRequestRoundTrip(t *testing.T) {
	for _, r := range []ChildRequest{
		{UserPart: &UserPartOptions{Job: jid("42"), JobDir: "/var/tmp/sifkernel/jobs/42", Home: "/home/a b",
			Stage: true, Budget: 90 * time.Second, Until: time.Date(2026, 12, 2, 20, 1, 2, 345678901, time.UTC), CreatedBy: "prolog"}},
		{UserPart: &UserPartOptions{Job: jid("7"), Home: "/h/\"--config=/etc/x\"\n", CreatedBy: "prolog", CutOff: []string{"/scratch/a b.sif"}}},
		{Cleanup: &CleanupOptions{Job: jid("42"), RootJobDir: true, GC: true}},
		{Cleanup: &CleanupOptions{Job: jid("43")}},
		{Sweep: &UserSweepOptions{Running: []slurm.JobID{jid("3"), jid("1"), jid("2")}}},
		{Sweep: &UserSweepOptions{Running: []slurm.JobID{}}},
		{Usage: &UsageOptions{}},
	} {
		args, err := r.Args()
		if err != nil {
			t.Fatalf("Args(%+v): %v", r, err)
		}
		if args[0] != ChildCommand || len(args) != 3 {
			t.Fatalf("Args = %q", args)
		}
		got, err := ParseChildRequest(args[1:])
		if err != nil {
			t.Fatalf("ParseChildRequest(%q): %v", args, err)
		}
		if r.Sweep != nil { // sent sorted, whatever order the caller had
			r.Sweep.Running = []slurm.JobID{jid("1"), jid("2"), jid("3")}[:len(r.Sweep.Running)]
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %q:\n got %+v\nwant %+v", args, got, r)
		}
	}
}

func TestChildRequestRefusesWhatArgsNeverWrites(t *testing.T) {
	if _, err := (ChildRequest{}).Args(); err == nil {
		t.Error("an empty request was encoded")
	}
	if _, err := (ChildRequest{Cleanup: &CleanupOptions{}, Sweep: &UserSweepOptions{}}).Args(); err == nil {
		t.Error("two requests in one were encoded")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"user-cleanup"}, "takes KIND REQUEST"},
		{[]string{"user-cleanup", `{"cleanup":{"job":"1"}}`, "x"}, "takes KIND REQUEST"},
		{[]string{"user-part", `{"cleanup":{"job":"1"}}`}, "the request is a user-cleanup"},
		{[]string{"user-cleanup", `{"cleanup":{"job":"1","rm":"/"}}`}, "unknown field"},
		{[]string{"user-cleanup", `{"cleanup":{"job":"1"}} {}`}, "data after"},
		{[]string{"user-cleanup", `{}`}, "not 0"},
		{[]string{"user-cleanup", `{"cleanup":{"job":"1"},"sweep":{"running":[]}}`}, "not 2"},
		{[]string{"user-cleanup", `--job 1`}, "invalid character"},
	} {
		_, err := ParseChildRequest(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseChildRequest(%q) = %v, want %q", c.args, err, c.want)
		}
	}
}

// jid is a job id the test knows to be valid.
func jid(s string) slurm.JobID {
	j, err := slurm.ParseJobID(s)
	if err != nil {
		panic(err)
	}
	return j
}

// TestDecodeChildReply: root reads the child's reply as strictly as the
// child reads the request: the one answer the request calls for, nothing
// unknown, nothing after it.
func TestDecodeChildReply(t *testing.T) {
	part := ChildRequest{UserPart: &UserPartOptions{Job: jid("1")}}
	usage := ChildRequest{Usage: &UsageOptions{}}
	for _, tt := range []struct {
		name, data string
		req        ChildRequest
		want       string // "" for no error
	}{
		{"nothing", "", part, ""},
		{"a report", `{"user_part":{"job":"1","kernels":[{"name":"k"}]}}`, part, ""},
		{"usage", `{"usage":{"entries":1,"bytes":2}}`, usage, ""},
		{"usage for a user part", `{"usage":{"entries":1}}`, part, "not the reply to a user-part request"},
		{"both", `{"usage":{},"user_part":{}}`, part, "not the reply"},
		{"an unknown field", `{"user_part":{},"exec":"/bin/sh"}`, part, "unknown field"},
		{"an unknown usage field", `{"usage":{"entries":1,"uid":0}}`, usage, "unknown field"},
		{"a path as the job", `{"user_part":{"job":"../x"}}`, part, "not a Slurm job id"},
		{"data after", `{"usage":{}} {"usage":{}}`, usage, "data after"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := decodeChildReply([]byte(tt.data), tt.req)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("decodeChildReply: %v", err)
				}
				if tt.name == "a report" && (reply.UserPart == nil || len(reply.UserPart.Kernels) != 1 || reply.UserPart.Job.String() != "1") {
					t.Errorf("report = %+v", reply.UserPart)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeChildReply(%s) = %v, want %q", tt.data, err, tt.want)
			}
		})
	}
}
