package kernelspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// MaxFileSize bounds a kernel.json; real ones are well under a kilobyte.
const MaxFileSize = 1 << 20

// FileName is the kernelspec file inside a kernel directory.
const FileName = "kernel.json"

// Kernel is one kernel directory as found on disk.
type Kernel struct {
	Name string // the directory's base name
	Dir  string // the kernel directory
	Raw  []byte // the file's bytes, when it could be read
	Spec *Spec  // nil when the file could not be read or parsed
	Err  error  // why Spec is nil: a read error, *SyntaxError or *FieldError
	// LoadErr says why jupyter_client cannot load the file (a *LoadError,
	// or Err when it cannot even read it); nil if Jupyter lists the kernel.
	// A kernel Jupyter loads may still have an Err: it breaks at start.
	LoadErr error
	// Depth is how deep the file nests (the top-level object counts 1):
	// how deep Python may go depends on its version (Jupyter.MaxJSONDepth).
	Depth int
}

// File is the path of the kernel.json.
// It is joined as Python joins it: Jupyter opens exactly this path.
func (k *Kernel) File() string { return pjoin(k.Dir, FileName) }

// SyntaxError is invalid JSON, with the position where it was noticed.
type SyntaxError struct {
	File         string
	Line, Column int
	Msg          string
	Curly        bool // curly quotes stand where JSON needs straight ones
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: invalid JSON: %s", e.File, e.Line, e.Column, e.Msg)
}

// Load reads dir/kernel.json. It never fails: problems are kept in Err.
func Load(dir string) *Kernel {
	k := &Kernel{Name: filepath.Base(dir), Dir: dir}
	k.Raw, k.Err = fsx.ReadRegular(k.File(), MaxFileSize, false)
	if k.Err != nil {
		k.LoadErr = k.Err
		return k
	}
	sc, err := scan(k.Raw)
	if err != nil {
		k.Err = parseError(k.File(), k.Raw, err)
		k.LoadErr = k.Err
		return k
	}
	k.Depth = sc.Depth
	if reason := jupyterLoad(sc); reason != "" {
		k.LoadErr = &LoadError{File: k.File(), Reason: reason}
	}
	k.Spec, k.Err = parseScanned(k.File(), k.Raw, sc)
	return k
}

// Parse decodes kernel.json bytes as Python's json.load does (Jupyter's
// reader: see scan); file names the source in errors.
func Parse(file string, data []byte) (*Spec, error) {
	sc, err := scan(data)
	if err != nil {
		return nil, parseError(file, data, err)
	}
	return parseScanned(file, data, sc)
}

func parseError(file string, data []byte, err error) error {
	var pe *PyJSONError
	if errors.As(err, &pe) {
		return syntaxError(file, data, int64(pe.Offset), pe.Msg)
	}
	return fmt.Errorf("%s: %w", file, err)
}

func parseScanned(file string, data []byte, sc *scanned) (*Spec, error) {
	switch {
	case !sc.Object:
		return nil, syntaxError(file, data, 0, "the top level must be an object")
	}
	s := &Spec{orig: map[string]json.RawMessage{}, std: map[string]json.RawMessage{}}
	for _, m := range sc.Members {
		if _, seen := s.std[m.Key]; !seen {
			s.order = append(s.order, m.Key)
		}
		s.orig[m.Key], s.std[m.Key] = m.Raw, m.Std // as in Python, the last one counts
	}
	order, orig, std := s.order, s.orig, s.std
	if err := s.fromMap(maps.Clone(std)); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s: %w", file, fe)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.order, s.orig, s.std = order, orig, std
	return s, nil
}

func syntaxError(file string, data []byte, offset int64, msg string) *SyntaxError {
	e := &SyntaxError{File: file, Msg: msg}
	if fixed, at, ok := RepairQuotes(data); ok {
		if _, err := Parse(file, fixed); err == nil {
			e.Curly = true
			offset = int64(at)
			e.Msg = "curly quotes (“ ” ‘ ’) where JSON needs straight quotes (\")"
		}
	}
	e.Line, e.Column = position(data, offset)
	return e
}

// position gives the 1-based line and column (in characters) of the byte at offset.
func position(data []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(data))))
	line, col = 1, 1
	for _, r := range string(data[:offset]) {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
