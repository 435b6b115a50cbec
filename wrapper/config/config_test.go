package config

import (
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		bytes   int64
		percent float64
		wantErr bool
	}{
		{in: "2GiB", bytes: 2 << 30},
		{in: "500MB", bytes: 500e6},
		{in: "1048576", bytes: 1 << 20},
		{in: "1.5 GiB", bytes: 3 << 29},
		{in: "50%", percent: 50},
		{in: "0%", wantErr: true},
		{in: "101%", wantErr: true},
		{in: "12 parsecs", wantErr: true},
		{in: "-1GB", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSize(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got.Bytes != tt.bytes || got.Percent != tt.percent {
				t.Errorf("ParseSize(%q) = %+v, want bytes %d percent %v", tt.in, got, tt.bytes, tt.percent)
			}
		})
	}
	if got := (Size{Percent: 50}).Of(1000); got != 500 {
		t.Errorf("50%% of 1000 = %d", got)
	}
}

func TestLoadDefaultsWhenNoSiteFile(t *testing.T) {
	l, err := Load(Files{Site: filepath.Join(t.TempDir(), "absent.toml")})
	if err != nil {
		t.Fatal(err)
	}
	if l.Cache.Dir != "/tmp/sifkernel" || l.Cache.StageTimeout.Duration != 120*time.Second || l.Cache.UserQuota.Percent != 50 {
		t.Errorf("defaults not applied: %+v", l.Cache)
	}
	if s := l.Source("cache.dir"); s.Kind != "default" {
		t.Errorf("source = %v, want default", s)
	}
}

func TestLoadSiteAndUser(t *testing.T) {
	site := write(t, "site.toml", "# site\n[cache]\ndir = \"/local/sk\"\nreserve = \"4GiB\"\n\n[log]\nlevel = \"debug\"\n")
	user := write(t, "user.toml", "[log]\nlevel = \"warn\"\n")
	l, err := Load(Files{Site: site, SiteExplicit: true, User: user})
	if err != nil {
		t.Fatal(err)
	}
	if l.Cache.Dir != "/local/sk" || l.Cache.Reserve.Bytes != 4<<30 || l.Log.Level != "warn" {
		t.Errorf("got %+v %+v", l.Cache, l.Log)
	}
	if s := l.Source("cache.dir"); s.Kind != "site" || s.File != site || s.Line != 3 {
		t.Errorf("cache.dir source = %+v, want site file line 3", s)
	}
	if s := l.Source("log.level"); s.Kind != "user" || s.Line != 2 {
		t.Errorf("log.level source = %+v, want user file line 2", s)
	}
	if got := l.Config.Apptainer.Search; len(got) != 3 {
		t.Errorf("unset keys must keep defaults, search = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, site, user string
		explicit         bool
		want             []string
	}{
		{name: "unknown key", site: "[cache]\ndir = \"/x\"\nsize = 3\n", want: []string{"site.toml:3", `unknown key "cache.size"`}},
		{name: "unknown table", site: "\n[caches]\ndir = \"/x\"\n", want: []string{"site.toml:2", `"caches"`}},
		{name: "wrong type", site: "[cache]\n\ndir = 5\n", want: []string{"site.toml", "line 3", "cache.dir"}},
		{name: "bad size", site: "[cache]\nreserve = \"lots\"\n", want: []string{"site.toml", "line 2", "reserve", "lots"}},
		{name: "bad duration", site: "[cache]\nstage_timeout = \"2 minutes\"\n", want: []string{"stage_timeout", "Go syntax"}},
		{name: "syntax", site: "[cache\n", want: []string{"site.toml", "line 2", "table name"}},
		{name: "invalid value", site: "[log]\nformat = \"xml\"\n", want: []string{"log.format", "xml"}},
		{name: "relative cache dir", site: "[cache]\ndir = \"cache\"\n", want: []string{"cache.dir"}},
		{name: "unknown fault", site: "[prolog]\nfail_node_on = [\"everything\"]\n", want: []string{"prolog.fail_node_on", "everything"}},
		{name: "read streams", site: "[cache]\nread_streams = \"17\"\n", want: []string{"cache.read_streams", "1 to 16"}},
		{name: "read streams word", site: "[cache]\nread_streams = \"many\"\n", want: []string{"cache.read_streams", "\"many\""}},
		{name: "user sets site key", user: "[cache]\ndir = \"/home/me\"\n", want: []string{"user.toml:2", `"cache.dir" may only be set in the site config`}},
		{name: "explicit site missing", explicit: true, want: []string{"absent.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := Files{Site: filepath.Join(t.TempDir(), "absent.toml"), SiteExplicit: tt.explicit}
			if tt.site != "" {
				files.Site = write(t, "site.toml", tt.site)
			}
			if tt.user != "" {
				files.User = write(t, "user.toml", tt.user)
			}
			_, err := Load(files)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSetAndSettings(t *testing.T) {
	l, err := Load(Files{Site: filepath.Join(t.TempDir(), "absent.toml")})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set("log.level", "debug", Source{Kind: "flag", Name: "--log-level"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("log.level", "loud", Source{Kind: "env", Name: "SIFKERNEL_LOG_LEVEL"}); err == nil {
		t.Error("Set accepted an invalid level")
	}
	if err := l.Set("cache.reserve", "1GiB", Source{Kind: "flag"}); err != nil || l.Cache.Reserve.Bytes != 1<<30 {
		t.Errorf("Set of a size: %v, %+v", err, l.Cache.Reserve)
	}
	byKey := map[string]Setting{}
	for _, s := range l.Settings() {
		byKey[s.Key] = s
	}
	// One setting per key of the config file: every leaf of Config's TOML
	// tree, counted from the type, so a new key needs no edit here.
	want := tomlKeys(reflect.TypeOf(Config{}), "")
	if len(byKey) != len(l.Settings()) {
		t.Errorf("Settings lists a key twice: %d settings, %d keys", len(l.Settings()), len(byKey))
	}
	for _, k := range want {
		if _, ok := byKey[k]; !ok {
			t.Errorf("Settings does not list %s", k)
		}
	}
	if len(byKey) != len(want) {
		t.Errorf("Settings lists %d keys, the config file has %d", len(byKey), len(want))
	}
	if s := byKey["cache.stage_timeout"]; s.Value != "120s" || s.Source.Kind != "default" {
		t.Errorf("stage_timeout = %+v", s)
	}
	if s := byKey["log.level"]; s.Source.String() != "flag --log-level" {
		t.Errorf("log.level source = %v", s.Source)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	l, err := Load(Files{Site: "../../examples/config.toml", SiteExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Settings() {
		if s.Source.Kind != "site" {
			t.Errorf("examples/config.toml does not set %s: the example must show every key", s.Key)
		}
	}
}

// tomlKeys lists the dotted keys of a TOML tree described by t: a struct
// field is a table unless its type reads itself from text (Size, Duration).
func tomlKeys(t reflect.Type, prefix string) []string {
	text := reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(text) {
			keys = append(keys, tomlKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// TestLoadAsRootAndAsHook: the trust rule for root and the hooks' fall-back
// are Load's, whoever calls it.
func TestLoadAsRootAndAsHook(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(site, []byte("[cache]\ndir = \"/var/tmp/elsewhere\"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(site, 0o666); err != nil { // past the umask: anyone may write it
		t.Fatal(err)
	}
	if _, err := Load(Files{Site: site, SiteExplicit: true, AsRoot: true}); err == nil || !strings.Contains(err.Error(), "not used as root") {
		t.Errorf("a site config others can write, loaded as root: %v", err)
	}
	l, err := Load(Files{Site: site, SiteExplicit: true, AsRoot: true, Hook: true})
	if err != nil || l.FellBack == nil || l.Cache.Dir != Default().Cache.Dir {
		t.Errorf("a hook as root on that file: %v, fell back %v, cache.dir %s; want the defaults", err, l.FellBack, l.Cache.Dir)
	}
	if l, err := Load(Files{Site: site, SiteExplicit: true}); err != nil || l.Cache.Dir != "/var/tmp/elsewhere" || l.FellBack != nil {
		t.Errorf("the same file, not as root: %v", err)
	}
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[cache\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Files{Site: broken, SiteExplicit: true}); err == nil {
		t.Error("a broken config loaded for a command")
	}
	if l, err := Load(Files{Site: broken, SiteExplicit: true, Hook: true}); err != nil || l.FellBack == nil || !strings.Contains(l.FellBack.Error(), broken) {
		t.Errorf("a hook on a broken config: %v, fell back %v; want the defaults and the file named", err, l.FellBack)
	}
}
