package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Aliases:   []string{"rm"},
		Usage:     "remove a kernelspec from your Jupyter data directory",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("kernel remove takes one NAME")
			}
			return e.kernelRemove(c.Args().First(), c.String("dir"))
		},
	}
}

var dirFlag = &cli.StringFlag{Name: "dir", Usage: "Jupyter data `DIR` (default: JUPYTER_DATA_DIR, else ~/.local/share/jupyter)"}

func (e *env) dataDir(flag string) (string, error) {
	d := flag
	if d == "" {
		d = e.kernelEnv().DataDir()
	}
	return filepath.Abs(d)
}

// kernelRemove deletes DATA/kernels/NAME. A kernel directory that is a
// symbolic link loses only the link, never what it points to.
func (e *env) kernelRemove(name, dirFlag string) error {
	if err := kernelspec.ValidName(name); err != nil {
		return &UsageError{Err: err}
	}
	data, err := e.dataDir(dirFlag)
	if err != nil {
		return err
	}
	dir := filepath.Join(data, "kernels", name)
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no kernel %q in %s", name, filepath.Join(data, "kernels"))
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(dir); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "removed the link %s (its target was left alone)\n", dir)
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dir, kernelspec.FileName)); err != nil {
		return fmt.Errorf("%s holds no %s: not removing a directory that is not a kernel", dir, kernelspec.FileName)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	fmt.Fprintf(e.Stdout, "removed %s\n", dir)
	return nil
}
