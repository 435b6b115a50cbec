package kernels

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// Removed says what Remove took away.
type Removed struct {
	Path string
	Link bool // only a symbolic link was removed; its target was left alone
}

// Remove deletes DATA/kernels/NAME. A kernel directory that is a symbolic
// link loses only the link, never what it points to; a directory without a
// kernel.json is refused.
func (u *User) Remove(name, dataDir string) (Removed, error) {
	if err := kernelspec.ValidName(name); err != nil {
		return Removed{}, usage(err)
	}
	data, err := u.DataDir(dataDir)
	if err != nil {
		return Removed{}, err
	}
	dir := filepath.Join(data, "kernels", name)
	r := Removed{Path: dir}
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("no kernel %q in %s", name, filepath.Join(data, "kernels"))
	}
	if err != nil {
		return r, err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		r.Link = true
		return r, os.Remove(dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, kernelspec.FileName)); err != nil {
		return r, fmt.Errorf("%s holds no %s: not removing a directory that is not a kernel", dir, kernelspec.FileName)
	}
	if err := os.RemoveAll(dir); err != nil {
		return r, fmt.Errorf("removing %s: %w", dir, err)
	}
	return r, nil
}
