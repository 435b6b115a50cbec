package kernelspec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// Entry is a kernel directory found in the search path.
type Entry struct {
	*Kernel
	Data       Dir    // the data directory it was found in
	ShadowedBy string // the kernel directory Jupyter uses instead, if any
	// Ignored says why Jupyter does not count this directory as a kernel at
	// all (its kernel.json is not a regular file); such an entry is never
	// read, never wins and never shadows.
	Ignored string
}

// Discover lists every kernel directory in the search path as
// jupyter_client's find_kernel_specs sees it: a directory counts when its
// kernel.json is a regular file (symlinks followed), whether or not it
// loads; names fold with Python's lower(); within one data directory the
// last in directory order wins, across them the first. Entries come in
// search order, sorted by name within each data directory.
func Discover(dirs []Dir) []Entry { return DiscoverWithin(dirs, -1) }

// Kernels is Discover on this environment's search path, with the JSON
// limits of its Jupyter's Python.
func (e Env) Kernels() []Entry { return e.KernelsWithin(-1) }

// KernelsWithin is Kernels reading at most maxBytes of kernel.json files.
func (e Env) KernelsWithin(maxBytes int64) []Entry {
	e = e.WithModel()
	return discover(e.SearchPath(), *e.Jupyter, maxBytes)
}

// ErrBudget marks a kernel.json left unread: the reader's budget of bytes
// was spent on the kernels before it.
var ErrBudget = errors.New("not read: the budget for reading kernel.json files is spent")

// DiscoverWithin is Discover reading at most maxBytes of kernel.json files
// in all (no limit if negative); the kernels past that carry ErrBudget.
func DiscoverWithin(dirs []Dir, maxBytes int64) []Entry {
	return discover(dirs, Jupyter{Core: Version{5, -1, -1}, Python: Version{-1, -1, -1}}, maxBytes)
}

func discover(dirs []Dir, j Jupyter, maxBytes int64) []Entry {
	var out []Entry
	winner := map[string]string{} // folded name -> kernel directory
	seen := map[identity]bool{}
	for _, d := range dirs {
		found, local := scanDataDir(d)
		found = slices.DeleteFunc(found, func(e Entry) bool {
			// The same directory met again under the same name (a data
			// directory named twice, or once through a symbolic link such
			// as a linked HOME) is the kernel already listed, not one it
			// shadows: Jupyter lists it once.
			id, ok := identify(e.Name, e.Dir)
			if !ok {
				return false
			}
			if seen[id] {
				return true
			}
			seen[id] = true
			return false
		})
		for i := range found {
			e := &found[i]
			if e.Ignored != "" {
				continue
			}
			key := PyLower(e.Name)
			if w, ok := winner[key]; ok {
				e.ShadowedBy = w
			} else if local[key] != e.Dir {
				e.ShadowedBy = local[key]
			}
			e.Kernel = loadWithin(e.Kernel, &maxBytes)
			if limit := j.MaxJSONDepth(); e.Depth > limit && e.LoadErr == nil {
				e.LoadErr = &LoadError{File: e.File(), Reason: fmt.Sprintf(
					"nested %d deep: Python %s's json gives up past %d (RecursionError)", e.Depth, j.python(), limit)}
			}
		}
		for key, dir := range local {
			if _, ok := winner[key]; !ok {
				winner[key] = dir
			}
		}
		sort.SliceStable(found, func(i, j int) bool { return found[i].Name < found[j].Name })
		out = append(out, found...)
	}
	return out
}

// identity is a kernel directory as the file system knows it, under a name.
type identity struct {
	name     string
	dev, ino uint64
}

func identify(name, dir string) (identity, bool) {
	st, err := os.Stat(dir)
	if err != nil {
		return identity{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return identity{}, false
	}
	return identity{PyLower(name), uint64(sys.Dev), sys.Ino}, true
}

// scanDataDir lists one data directory's kernels in directory order (as
// Python's os.listdir gives them) and says which directory each folded
// name resolves to there: the last one.
func scanDataDir(d Dir) ([]Entry, map[string]string) {
	local := map[string]string{}
	kd := d.Kernels()
	if st, err := os.Stat(kd); err != nil || !st.IsDir() {
		return nil, local
	}
	f, err := os.Open(kd)
	if err != nil {
		return nil, local
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	var found []Entry
	for _, name := range names {
		dir := pjoin(kd, name)
		why, ok := kernelDir(dir)
		if !ok {
			continue
		}
		e := Entry{Kernel: &Kernel{Name: name, Dir: dir}, Data: d, Ignored: why}
		if why == "" {
			local[PyLower(name)] = dir
		} else {
			e.Err = fmt.Errorf("%s: %w: %s", e.File(), ErrIgnored, why)
			e.LoadErr = e.Err
		}
		found = append(found, e)
	}
	return found, local
}

// kernelDir says whether dir is a kernel directory to Jupyter (why == "")
// or one it ignores (a directory with something named kernel.json that is
// not a regular file: why says what it is); ok is false for anything else.
func kernelDir(dir string) (why string, ok bool) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", false
	}
	file := pjoin(dir, FileName)
	lst, err := os.Lstat(file)
	if err != nil {
		return "", false
	}
	st, err := os.Stat(file)
	switch {
	case err == nil && st.Mode().IsRegular():
		return "", true
	case errors.Is(err, fs.ErrNotExist):
		return "kernel.json is a broken symbolic link: Jupyter ignores this directory", true
	case err != nil:
		return fmt.Sprintf("kernel.json cannot be followed (%v): Jupyter ignores this directory", unwrap(err)), true
	case lst.Mode()&fs.ModeSymlink != 0:
		return fmt.Sprintf("kernel.json links to %s: Jupyter ignores this directory", fsx.Kind(st.Mode())), true
	}
	return fmt.Sprintf("kernel.json is %s: Jupyter ignores this directory", fsx.Kind(st.Mode())), true
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadWithin loads k unless the byte budget is spent.
func loadWithin(k *Kernel, budget *int64) *Kernel {
	if *budget >= 0 && *budget < MaxFileSize {
		k.Err = fmt.Errorf("%s: %w", k.File(), ErrBudget)
		k.LoadErr = k.Err
		return k
	}
	l := Load(k.Dir)
	l.Name = k.Name
	if *budget >= 0 {
		*budget -= int64(len(l.Raw))
	}
	return l
}

// Find returns the entries Jupyter would take for name (folding case as
// Python does), in search order.
func Find(entries []Entry, name string) []Entry {
	var out []Entry
	key := PyLower(name)
	for _, e := range entries {
		if PyLower(e.Name) == key {
			out = append(out, e)
		}
	}
	return out
}

// OtherWinners says which kernel directory each name resolves to under the
// other Jupyter generation (jupyter_core 4 for a 5.x model, 5 for 4.x), in
// the same environment, and names that generation. Nothing is loaded.
func (e Env) OtherWinners() (map[string]string, string) {
	j := e.Model()
	if j.Generation() >= 5 {
		j.Core = Version{4, -1, -1}
	} else {
		j.Core = Version{5, -1, -1}
	}
	e.Jupyter = &j
	winner := map[string]string{}
	for _, d := range e.SearchPath() {
		_, local := scanDataDir(d)
		for key, dir := range local {
			if _, ok := winner[key]; !ok {
				winner[key] = dir
			}
		}
	}
	return winner, fmt.Sprintf("jupyter_core %d", j.Generation())
}
