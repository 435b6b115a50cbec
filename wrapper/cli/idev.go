package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

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
			u := e.user()
			entries, _ := u.Select(nil)
			var containers []kernelspec.Entry
			for _, en := range entries {
				if en.Spec == nil || kernelspec.IsContainer(en.Spec) {
					containers = append(containers, en)
				}
			}
			checked := kernels.CheckAll(u.Checker(c.Context), containers)
			if errs := checked.Errors; errs > 0 {
				for _, en := range containers {
					for _, f := range checked.Findings[en.Dir] {
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
				if idev, err = kernels.LookPath("idev", e.Getenv("PATH")); err != nil {
					return fmt.Errorf("idev not found: set idev.path in the config or load its module")
				}
			}
			env := append(os.Environ(), "SIFKERNEL_AUTO=1")
			exec := e.Exec
			if exec == nil {
				exec = syscall.Exec
			}
			return exec(idev, append([]string{"idev"}, c.Args().Slice()...), env)
		},
	}
}
