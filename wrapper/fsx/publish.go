package fsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Durability says what a published file survives.
type Durability int

const (
	// Volatile: a reader sees the old file or the new one, never a part,
	// but a crash may leave neither. For a job's own files (its kernels'
	// copies, node.json), which nothing needs after a crash (sweep removes
	// them): it spares the Prolog two fsyncs a file, 22 for ten kernels.
	Volatile Durability = iota
	// Durable: the file's bytes and its name are on disk when Publish
	// returns (fsync of the file, rename, fsync of the directory).
	Durable
)

// Pending is a file on its way to its path, and the one way sifkernel
// publishes a file: written under a temporary name in the same directory
// (".NAME.tmp-RANDOM", which gc and sweep know as a temp), then renamed over
// the path in one step, so a reader sees the old file or the new one, never
// a part, and a half-written file is never published. Cleanup removes the
// temporary file unless it was published; defer it.
//
// (renameio, which sifkernel used before, always fsyncs and cannot hand a
// name to a program that writes the file itself, such as apptainer pull.)
type Pending struct {
	path, tmp string
	f         *os.File
	root      *os.Root // names are in root's directory where set
	done      bool
}

// tempName is a fresh temporary name for path's file in the same directory.
func tempName(path string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(b[:])), nil
}

// Create opens a new temporary file for path, to be written and published.
func Create(path string) (*Pending, error) { return CreateIn(nil, path) }

// CreateIn is Create for name in root's directory (through the verified
// descriptor, never a path from /); root nil is Create.
func CreateIn(root *os.Root, name string) (*Pending, error) {
	for range 3 {
		tmp, err := tempName(name)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
		flags := os.O_RDWR | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
		var f *os.File
		if root != nil {
			f, err = root.OpenFile(tmp, flags, 0o600)
		} else {
			f, err = os.OpenFile(tmp, flags, 0o600)
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
		return &Pending{path: name, tmp: tmp, f: f, root: root}, nil
	}
	return nil, fmt.Errorf("writing %s: no free temporary name", name)
}

// Reserve gives a temporary name for path and no file: for a program that
// writes the file itself (apptainer pull, the sif library). Name is where
// it writes; Publish renames what it left there.
func Reserve(path string) (*Pending, error) {
	tmp, err := tempName(path)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &Pending{path: path, tmp: tmp}, nil
}

// Adopt takes f, a temporary file already written in path's directory under
// a name of the caller's own (the cache's copies carry their key in it, for
// resuming and gc), to be published at path.
func Adopt(f *os.File, path string) *Pending {
	return &Pending{path: path, tmp: f.Name(), f: f}
}

// Name is the temporary file's name.
func (p *Pending) Name() string { return p.tmp }

// File is the temporary file open for writing (nil after Reserve).
func (p *Pending) File() *os.File { return p.f }

// Write appends b to the temporary file.
func (p *Pending) Write(b []byte) (int, error) { return p.f.Write(b) }

// Publish gives the file mode (0: as its writer left it) and renames it
// over the path, making it durable as d says.
func (p *Pending) Publish(mode os.FileMode, d Durability) error {
	if err := p.finish(mode, d); err != nil {
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	var err error
	if p.root != nil {
		err = p.root.Rename(p.tmp, p.path)
	} else {
		err = os.Rename(p.tmp, p.path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	p.done = true
	if d == Durable {
		return p.syncDir()
	}
	return nil
}

// PublishNew is Publish that never replaces: it fails with an error that
// errors.Is(err, fs.ErrExist) when path exists (a hard link, which unlike a
// rename refuses to replace anything). Always durable.
func (p *Pending) PublishNew(mode os.FileMode) error {
	if p.root != nil {
		return fmt.Errorf("writing %s: PublishNew works by path", p.path)
	}
	if err := p.finish(mode, Durable); err != nil {
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	if err := os.Link(p.tmp, p.path); err != nil {
		return err
	}
	_ = os.Remove(p.tmp) // the link is the file now; a leftover name is a temp gc knows
	p.done = true
	return p.syncDir()
}

// finish sets the mode, syncs where durable, and closes.
func (p *Pending) finish(mode os.FileMode, d Durability) error {
	f := p.f
	if f == nil { // reserved: the writer has closed it
		var err error
		if f, err = os.OpenFile(p.tmp, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0); err != nil {
			return err
		}
	}
	p.f = nil
	defer f.Close()
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			return err
		}
	}
	if d == Durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return f.Close()
}

func (p *Pending) syncDir() error {
	if p.root == nil {
		return SyncDir(filepath.Dir(p.path))
	}
	d, err := p.root.Open(filepath.Dir(p.path))
	if err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", p.path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", p.path, err)
	}
	return nil
}

// Cleanup removes the temporary file unless it was published. It is safe
// to call more than once and after Publish.
func (p *Pending) Cleanup() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	if p.done {
		return
	}
	p.done = true
	if p.root != nil {
		_ = p.root.Remove(p.tmp)
		return
	}
	_ = unix.Unlink(p.tmp)
}

// WriteFile publishes data at path atomically (see Pending), durable as d says.
func WriteFile(path string, data []byte, mode os.FileMode, d Durability) error {
	return WriteFileIn(nil, path, data, mode, d)
}

// WriteFileIn is WriteFile for name in root's directory; root nil is WriteFile.
func WriteFileIn(root *os.Root, name string, data []byte, mode os.FileMode, d Durability) error {
	p, err := CreateIn(root, name)
	if err != nil {
		return err
	}
	defer p.Cleanup()
	if _, err := p.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return p.Publish(mode, d)
}
