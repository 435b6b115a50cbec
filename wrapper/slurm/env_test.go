package slurm

import "testing"

func TestJobFrom(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		flag, envID, want string
		err               bool
	}{
		{"", "", "", false},
		{"", "17", "17", false},
		{"42", "17", "42", false}, // the flag wins
		{"", "../x", "", true},
		{"4 2", "17", "", true}, // a bad flag is an error, not SLURM_JOB_ID
	}
	for _, tt := range tests {
		got, err := JobFrom(tt.flag, env(map[string]string{VarJobID: tt.envID}))
		if got.String() != tt.want || (err != nil) != tt.err {
			t.Errorf("JobFrom(%q) with %s=%q = %q, %v", tt.flag, VarJobID, tt.envID, got, err)
		}
	}
	if n := NumNodes(env(map[string]string{"SLURM_NNODES": "3"})); n != "3" {
		t.Errorf("NumNodes with SLURM_NNODES=3 = %q", n)
	}
	if n := NumNodes(env(map[string]string{"SLURM_NNODES": "3", "SLURM_JOB_NUM_NODES": "4"})); n != "4" {
		t.Errorf("NumNodes prefers SLURM_JOB_NUM_NODES: %q", n)
	}
}
