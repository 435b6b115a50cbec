package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// DefaultSiteFile is read when no --config or SIFKERNEL_CONFIG names another.
const DefaultSiteFile = "/etc/sifkernel/config.toml"

// Installed is the site config of the binary at self when none is named:
// etc/sifkernel/config.toml beside the binary's bin/ (make install's
// PREFIX, a module or the test cluster) if there is one, else "" for
// DefaultSiteFile (the package's: /usr/bin has no /usr/etc beside it). The
// binary's own config comes first, so a second install on a node (a module
// beside the package) never runs with the other one's config. sifkernel
// and sifkernel-cleanup, side by side, find the same one.
func Installed(self string) string {
	if self == "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(filepath.Dir(self)), "etc", "sifkernel", "config.toml")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// maxFileSize bounds how much of a config file is read; configs are small.
const maxFileSize = 1 << 20

// UserKeys are the only keys a user file may set: nothing a root hook trusts.
var UserKeys = []string{"log.level", "log.format", "kernel.python_no_user_site", "kernel.pull_dir", "cache.verify", "jupyter.core", "jupyter.python"}

// Source says where an effective value came from.
type Source struct {
	Kind string `json:"kind"`           // default, site, user, env or flag
	File string `json:"file,omitempty"` // for site and user
	Line int    `json:"line,omitempty"` // for site and user, when known
	Name string `json:"name,omitempty"` // the variable or flag, for env and flag
}

func (s Source) String() string {
	switch {
	case s.File != "" && s.Line > 0:
		return fmt.Sprintf("%s file %s:%d", s.Kind, s.File, s.Line)
	case s.File != "":
		return fmt.Sprintf("%s file %s", s.Kind, s.File)
	case s.Name != "":
		return s.Kind + " " + s.Name
	}
	return s.Kind
}

// Files names the config files to read, and who reads them.
type Files struct {
	Site         string // empty means DefaultSiteFile
	SiteExplicit bool   // the site file was named by the user: missing is an error
	User         string // empty means no user file (root hooks never read one)
	// AsRoot: the reader is root. The site file is used only if root alone
	// can change it and every directory above it (fsx.CheckTrustedFile):
	// root must not take cache.dir, slurm.squeue or a log file from a file
	// someone else wrote. No user file is read.
	AsRoot bool
	// Hook: the reader is a Slurm hook, which must not fail for a config
	// it cannot use: Load gives the built-in defaults instead, and says why
	// in Loaded.FellBack.
	Hook bool
}

// Loaded is an effective configuration with the source of every value.
type Loaded struct {
	Config
	sources map[string]Source
	// FellBack is why a hook runs on the defaults (nil when it does not).
	FellBack error
}

// Load starts from the defaults and applies the site file, then the user file.
// Unknown keys, wrong types and user files setting site-only keys are errors
// that name the file, line and key. It is the one place that decides which
// config root and the hooks run on (see Files.AsRoot and Files.Hook).
func Load(files Files) (*Loaded, error) {
	l, err := load(files)
	if err != nil && files.Hook {
		l = Defaults()
		l.FellBack = err
		return l, nil
	}
	return l, err
}

func load(files Files) (*Loaded, error) {
	l := Defaults()
	site := files.Site
	if site == "" {
		site = DefaultSiteFile
	}
	if files.AsRoot {
		if _, err := os.Lstat(site); err == nil {
			if err := fsx.CheckTrustedFile(site); err != nil {
				return nil, fmt.Errorf("site config %s is not used as root: %w", site, err)
			}
		}
		files.User = ""
	}
	if err := l.apply(site, "site", files.SiteExplicit, nil); err != nil {
		return nil, err
	}
	if files.User != "" {
		if err := l.apply(files.User, "user", false, UserKeys); err != nil {
			return nil, err
		}
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// Defaults is the built-in configuration, with every value's source "default".
func Defaults() *Loaded {
	return &Loaded{Config: Default(), sources: map[string]Source{}}
}

// Source returns where key (such as "cache.dir") got its value.
func (l *Loaded) Source(key string) Source {
	if s, ok := l.sources[key]; ok {
		return s
	}
	return Source{Kind: "default"}
}

// Set overrides one key from an environment variable or flag.
func (l *Loaded) Set(key, value string, src Source) error {
	before := l.Config
	f, ok := field(reflect.ValueOf(&l.Config).Elem(), strings.Split(key, "."))
	if !ok {
		return fmt.Errorf("set %s: no such key", key)
	}
	switch {
	case f.Kind() == reflect.String:
		f.SetString(value)
	case f.Addr().Type().Implements(textUnmarshaler):
		if err := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }).UnmarshalText([]byte(value)); err != nil {
			return fmt.Errorf("%s from %s: %w", key, src, err)
		}
	default:
		return fmt.Errorf("set %s: not settable from text", key)
	}
	if err := l.Validate(); err != nil {
		l.Config = before
		return err
	}
	l.sources[key] = src
	return nil
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

func (l *Loaded) apply(path, kind string, mustExist bool, allowed []string) error {
	// Never blocks: a FIFO in its place is refused (see fsx.OpenRegular).
	data, err := fsx.ReadRegular(path, maxFileSize, false)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s config: %w", kind, err) // err names the file
	}
	var file Config
	md, err := toml.Decode(string(data), &file)
	if err != nil {
		return fmt.Errorf("%s config %s: %w", kind, path, err)
	}
	if err := checkKeys(path, string(data), md, allowed); err != nil {
		return err
	}
	dst, src := reflect.ValueOf(&l.Config).Elem(), reflect.ValueOf(&file).Elem()
	for _, k := range md.Keys() {
		to, ok := field(dst, k)
		if !ok || to.Kind() == reflect.Struct && !to.Addr().Type().Implements(textUnmarshaler) {
			continue // a table header, not a value
		}
		from, _ := field(src, k)
		to.Set(from)
		l.sources[k.String()] = Source{Kind: kind, File: path, Line: keyLine(string(data), k.String())}
	}
	return nil
}

func checkKeys(path, data string, md toml.MetaData, allowed []string) error {
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("%s:%d: unknown key %q", path, keyLine(data, k.String()), k.String()))
	}
	if allowed != nil {
		for _, k := range md.Keys() {
			f, _ := field(reflect.ValueOf(&Config{}).Elem(), k)
			if f.Kind() != reflect.Struct && !slices.Contains(allowed, k.String()) {
				errs = append(errs, fmt.Errorf("%s:%d: key %q may only be set in the site config (user files may set %s)",
					path, keyLine(data, k.String()), k.String(), strings.Join(allowed, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// field finds the struct field for a dotted TOML key by its toml tag.
func field(v reflect.Value, key []string) (reflect.Value, bool) {
	for _, name := range key {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := range v.NumField() {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

// keyLine finds the line that defines a dotted key, for messages; 0 if unknown.
// The TOML library keeps key positions private, and config files are plain
// enough ([table] headers and key = value lines) for a scan to find them.
func keyLine(data, key string) int {
	table, line := "", 0
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "[[") {
			table = strings.Trim(strings.TrimSpace(strings.Split(t, "#")[0]), "[] \t")
			if table == key {
				return line
			}
			continue
		}
		name, _, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		full := strings.Trim(strings.TrimSpace(name), `"'`)
		if table != "" {
			full = table + "." + full
		}
		if full == key {
			return line
		}
	}
	return 0
}
