package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// execIdev replaces this process with idev; a test seam.
var execIdev = syscall.Exec

func (e *env) idevCommand() *cli.Command {
	return &cli.Command{
		Name:            "idev",
		Usage:           "check your container kernels, then start idev with them activated on the node",
		ArgsUsage:       "[IDEV ARGS...]",
		SkipFlagParsing: true,
		Description: "Fails fast, before you wait in the queue, if a container kernel has an\n" +
			"error (the same findings as `kernel check`). Then runs idev with\n" +
			"SIFKERNEL_AUTO=1, which the shipped profile snippet turns into\n" +
			"`eval \"$(sifkernel activate)\"` on the compute node.",
		Action: func(c *cli.Context) error {
			entries, _ := e.selectKernels(nil)
			var containers []kernelspec.Entry
			for _, en := range entries {
				if en.Spec == nil || kernelspec.IsContainer(en.Spec) {
					containers = append(containers, en)
				}
			}
			findings, errs, _ := checkAll(e.checker(c.Context), containers)
			if errs > 0 {
				for _, en := range containers {
					for _, f := range findings[en.Dir] {
						if f.Severity == kernelspec.Error {
							fmt.Fprintln(e.Stderr, f)
						}
					}
				}
				return fmt.Errorf("%d errors in your container kernels: fix them before queueing (sifkernel kernel fix)", errs)
			}
			idev := e.cfg.Idev.Path
			if idev == "" {
				var err error
				if idev, err = lookPath("idev", e.Getenv("PATH")); err != nil {
					return fmt.Errorf("idev not found: set idev.path in the config or load its module")
				}
			}
			env := append(os.Environ(), "SIFKERNEL_AUTO=1")
			return execIdev(idev, append([]string{"idev"}, c.Args().Slice()...), env)
		},
	}
}
