package kernelspec

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// FileMode is the mode of every kernel.json sifkernel writes.
const FileMode = 0o644

// Write encodes spec into dir/kernel.json atomically: a temporary file in the
// same directory, fsync, rename, fsync of the directory. A reader sees the
// old file or the new one, never a part.
func Write(dir string, spec *Spec) error {
	data, err := spec.Encode()
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Join(dir, FileName), err)
	}
	return WriteFile(filepath.Join(dir, FileName), data, FileMode)
}

// WriteFile publishes data at path atomically and durably.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return fsx.WriteFile(path, data, mode, fsx.Durable)
}

// Backup keeps a copy of data beside path as path.bak-<timestamp>, never
// overwriting an existing backup. It returns the backup's path.
func Backup(path string, data []byte, now time.Time) (string, error) {
	base := path + ".bak-" + now.UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s.%d", base, i)
		}
		err := publishNew(name, data)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("backing up %s: %w", path, err)
		}
		return name, fsx.SyncDir(filepath.Dir(name))
	}
	return "", fmt.Errorf("backing up %s: too many backups named %s*", path, base)
}

// publishNew writes a complete file at name, failing with an IsExist error if
// name exists: the data goes to a synced temporary file that is then
// hard-linked into place, which (unlike rename) refuses to replace anything.
func publishNew(name string, data []byte) error {
	p, err := fsx.Create(name)
	if err != nil {
		return err
	}
	defer p.Cleanup()
	if _, err := p.Write(data); err != nil {
		return err
	}
	return p.PublishNew(FileMode)
}
