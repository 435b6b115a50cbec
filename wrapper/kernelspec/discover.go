package kernelspec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is a kernel found in the search path.
type Entry struct {
	*Kernel
	Data       Dir    // the data directory it was found in
	ShadowedBy string // the kernel directory Jupyter uses instead, if any
}

// Discover lists every kernel directory in the search path, in search order,
// marking those a kernel of the same name earlier in the path hides. As in
// Jupyter, names compare in lower case and a directory counts when it holds
// a kernel.json (which need not be valid: check reports why).
func Discover(dirs []Dir) []Entry { return DiscoverWithin(dirs, -1) }

// ErrBudget marks a kernel.json left unread: the reader's budget of bytes
// was spent on the kernels before it.
var ErrBudget = errors.New("not read: the budget for reading kernel.json files is spent")

// DiscoverWithin is Discover reading at most maxBytes of kernel.json files
// in all (no limit if negative); the kernels past that carry ErrBudget.
func DiscoverWithin(dirs []Dir, maxBytes int64) []Entry {
	var out []Entry
	first := map[string]string{}
	for _, d := range dirs {
		for _, name := range kernelDirs(d.Kernels()) {
			var k *Kernel
			if maxBytes < 0 || maxBytes >= MaxFileSize {
				k = Load(filepath.Join(d.Kernels(), name))
				maxBytes -= int64(len(k.Raw))
			} else {
				k = &Kernel{Name: name, Dir: filepath.Join(d.Kernels(), name), Err: fmt.Errorf("%s: %w", filepath.Join(d.Kernels(), name, FileName), ErrBudget)}
			}
			e := Entry{Kernel: k, Data: d}
			key := strings.ToLower(name)
			if prev, ok := first[key]; ok {
				e.ShadowedBy = prev
			} else if ValidName(key) == nil {
				first[key] = k.Dir
			}
			out = append(out, e)
		}
	}
	return out
}

func kernelDirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			continue
		}
		if _, err := os.Lstat(filepath.Join(p, FileName)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Find returns the entries named name (in lower case, as Jupyter compares), in search order.
func Find(entries []Entry, name string) []Entry {
	var out []Entry
	for _, e := range entries {
		if strings.EqualFold(e.Name, name) {
			out = append(out, e)
		}
	}
	return out
}
