package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

func (e *env) kernelCommand() *cli.Command {
	return &cli.Command{
		Name:   "kernel",
		Usage:  "create, list, check, repair and remove containerized kernelspecs",
		Action: noSubcommand,
		Subcommands: []*cli.Command{
			e.kernelAddCommand(),
			e.kernelListCommand(),
			e.kernelCheckCommand(),
			e.kernelFixCommand(),
			e.kernelRemoveCommand(),
		},
	}
}

// selectKernels returns every discovered kernel, or those named (each name
// must match at least one). Names compare as Jupyter compares them.
func (e *env) selectKernels(names []string) ([]kernelspec.Entry, error) {
	all := kernelspec.Discover(e.kernelEnv().SearchPath())
	if len(names) == 0 {
		return all, nil
	}
	var out []kernelspec.Entry
	for _, n := range names {
		found := kernelspec.Find(all, n)
		if len(found) == 0 {
			return nil, fmt.Errorf("no kernel named %q in Jupyter's search path (see sifkernel kernel list)", n)
		}
		out = append(out, found...)
	}
	return out, nil
}

// checkAll lints entries and counts errors and warnings.
func checkAll(ch kernelspec.Checker, entries []kernelspec.Entry) (map[string][]kernelspec.Finding, int, int) {
	byDir := map[string][]kernelspec.Finding{}
	errs, warns := 0, 0
	for _, en := range entries {
		fs := ch.Check(en)
		byDir[en.Dir] = fs
		for _, f := range fs {
			switch f.Severity {
			case kernelspec.Error:
				errs++
			case kernelspec.Warning:
				warns++
			}
		}
	}
	return byDir, errs, warns
}
