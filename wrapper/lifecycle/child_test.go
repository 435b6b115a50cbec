package lifecycle

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestChildRequestRoundTrip(t *testing.T) {
	for _, r := range []ChildRequest{
		{UserPart: &UserPartOptions{Job: "42", JobDir: "/var/tmp/sifkernel/jobs/42", Home: "/home/a b",
			Stage: true, Budget: 90 * time.Second, CreatedBy: "prolog"}},
		{UserPart: &UserPartOptions{Job: "7", Home: "/h/\"--config=/etc/x\"\n", CreatedBy: "prolog"}},
		{Cleanup: &CleanupOptions{Job: "42", RootJobDir: true, GC: true}},
		{Cleanup: &CleanupOptions{Job: "43"}},
		{Sweep: &UserSweepOptions{Running: []string{"3", "1", "2"}}},
		{Sweep: &UserSweepOptions{Running: []string{}}},
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
			r.Sweep.Running = []string{"1", "2", "3"}[:len(r.Sweep.Running)]
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
