package apptainer

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		argv    string
		image   string
		args    string
		flags   []string // canonical names, in order
		unknown []string
		wantErr string
	}{
		{
			name:  "tacc tutorial",
			argv:  "/opt/apps/tacc-apptainer/1.3.3/bin/apptainer exec --nv --bind /run/user:/run/user /scratch/u/bert.sif python3 -m ipykernel_launcher -f {connection_file}",
			image: "/scratch/u/bert.sif", args: "python3 -m ipykernel_launcher -f {connection_file}",
			flags: []string{"--nv", "--bind"},
		},
		{
			name: "equals and short forms", argv: "apptainer exec -B=/a -B /b -B/c --env=A=1 -e --home /h img.sif cmd",
			image: "img.sif", args: "cmd", flags: []string{"--bind", "--bind", "--bind", "--env", "--cleanenv", "--home"},
		},
		{
			name: "global flags", argv: "singularity --debug -q run --containall x.sif", image: "x.sif",
			flags: []string{"--containall"},
		},
		{
			name: "dashdash", argv: "apptainer exec --nv -- -odd.sif python", image: "-odd.sif", args: "python",
			flags: []string{"--nv"},
		},
		{
			name: "unknown flag kept", argv: "apptainer exec --shiny --nv img cmd", image: "img", args: "cmd",
			flags: []string{"--shiny", "--nv"}, unknown: []string{"--shiny"},
		},
		{
			name: "unknown flag with equals", argv: "apptainer exec --new-thing=5 img cmd", image: "img", args: "cmd",
			flags: []string{"--new-thing"}, unknown: []string{"--new-thing"},
		},
		{name: "no verb", argv: "apptainer --debug", wantErr: "no verb"},
		{name: "bad verb", argv: "apptainer shell img", wantErr: `verb "shell"`},
		{name: "no image", argv: "apptainer exec --nv", wantErr: "no image"},
		{name: "value missing", argv: "apptainer exec --bind", wantErr: "--bind needs a value"},
		{name: "empty", argv: "", wantErr: "empty argv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := strings.Fields(tt.argv)
			c, err := Parse(argv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Image != tt.image || strings.Join(c.Args, " ") != tt.args {
				t.Errorf("image %q args %q, want %q %q", c.Image, c.Args, tt.image, tt.args)
			}
			var got []string
			for _, f := range c.Flags {
				got = append(got, f.Canonical())
			}
			if !slices.Equal(got, tt.flags) {
				t.Errorf("flags %v, want %v", got, tt.flags)
			}
			if !slices.Equal(c.Unknown(), tt.unknown) {
				t.Errorf("unknown %v, want %v", c.Unknown(), tt.unknown)
			}
			if out := c.Argv(); !slices.Equal(out, argv) {
				t.Errorf("Argv() = %q, want the input back %q", out, argv)
			}
		})
	}
}

func TestEditFlags(t *testing.T) {
	c, err := Parse(strings.Fields("apptainer exec --nv -B /a,/b:/c:ro img python"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Remove("--nv") || c.Has("--nv") || c.Remove("--nv") {
		t.Error("Remove(--nv) did not remove exactly once")
	}
	c.Add("--bind", "/run/user")
	want := []Bind{{"/a", "/a", ""}, {"/b", "/c", "ro"}, {"/run/user", "/run/user", ""}}
	if got := c.Binds(); !slices.Equal(got, want) {
		t.Errorf("Binds() = %v, want %v", got, want)
	}
	if got := strings.Join(c.Argv(), " "); got != "apptainer exec -B /a,/b:/c:ro --bind /run/user img python" {
		t.Errorf("Argv() = %s", got)
	}
}

func TestSees(t *testing.T) {
	tests := []struct {
		argv, path string
		want       bool
	}{
		{"apptainer exec img x", "/home/u/.local/share/jupyter/runtime", true},
		{"apptainer exec --no-home img x", "/home/u/.local/share/jupyter/runtime", false},
		{"apptainer exec --contain img x", "/home/u/r", false},
		{"apptainer exec --containall -B /home/u img x", "/home/u/r", true},
		{"apptainer exec img x", "/run/user/1000/jupyter", false},
		{"apptainer exec --bind /run/user:/run/user img x", "/run/user/1000/jupyter", true},
		{"apptainer exec --bind /run/user:/mnt img x", "/run/user/1000/jupyter", false},
		{"apptainer exec img x", "/tmp/rt", true},
		{"apptainer exec -c img x", "/tmp/rt", false},
		{"apptainer exec --home /scratch/h img x", "/home/u/r", false},
		{"apptainer exec --bind /run/users img x", "/run/user/1", false},
	}
	for _, tt := range tests {
		c, err := Parse(strings.Fields(tt.argv))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Sees(tt.path, "/home/u"); got != tt.want {
			t.Errorf("%s: Sees(%s) = %v, want %v", tt.argv, tt.path, got, tt.want)
		}
	}
}

// FuzzParse checks that parsing never panics and that parse -> format -> parse
// is stable: the formatted argv equals the input, and parses to the same model.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"apptainer exec --nv --bind /run/user:/run/user /s/b.sif python3 -m ipykernel_launcher -f {connection_file}",
		"singularity -d run -B=/a -B/b --env X=1 -- img a b",
		"apptainer exec --weird x --home=/h:/h img",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		argv := strings.Split(joined, "\x00")
		c, err := Parse(argv)
		if err != nil {
			return
		}
		out := c.Argv()
		if !slices.Equal(out, argv) {
			t.Fatalf("Argv() = %q, want %q", out, argv)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("formatted argv %q does not parse: %v", out, err)
		}
		if !slices.Equal(c2.Argv(), out) || c2.Image != c.Image {
			t.Fatalf("second parse differs: %q vs %q", c2.Argv(), out)
		}
	})
}
