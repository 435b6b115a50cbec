package apptainer

import (
	"path/filepath"
	"strings"
)

// Bind is one bind mount from --bind SRC[:DST[:OPTS]].
type Bind struct {
	Src, Dst, Opts string
}

// Binds lists the binds of every --bind flag (each may hold several, comma-separated).
func (c *Command) Binds() []Bind {
	var out []Bind
	for _, v := range c.Values("--bind") {
		for _, spec := range strings.Split(v, ",") {
			if spec == "" {
				continue
			}
			parts := strings.SplitN(spec, ":", 3)
			b := Bind{Src: parts[0], Dst: parts[0]}
			if len(parts) > 1 && parts[1] != "" {
				b.Dst = parts[1]
			}
			if len(parts) > 2 {
				b.Opts = parts[2]
			}
			out = append(out, b)
		}
	}
	return out
}

// Sees reports whether a host path is visible at the same path inside the
// container, given the home directory: through a bind whose source and
// destination agree, through the automatic home bind (unless --no-home,
// --contain or --containall), or through the automatic /tmp bind (unless
// --contain or --containall). Apptainer's site config can change the
// automatic binds; this follows its defaults.
func (c *Command) Sees(path, home string) bool {
	path = filepath.Clean(path)
	for _, b := range c.Binds() {
		if filepath.Clean(b.Src) == filepath.Clean(b.Dst) && within(path, b.Src) {
			return true
		}
	}
	contained := c.Has("--contain") || c.Has("--containall")
	if !contained && within(path, "/tmp") {
		return true
	}
	if home != "" && within(path, home) && !c.Has("--no-home") {
		custom := c.Values("--home")
		if len(custom) > 0 {
			src, dst, _ := strings.Cut(custom[len(custom)-1], ":")
			return within(path, src) && (dst == "" || filepath.Clean(dst) == filepath.Clean(src))
		}
		return !contained
	}
	return false
}

func within(path, dir string) bool {
	dir = filepath.Clean(dir)
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
