// Command sifkernel makes containerized Jupyter kernels work well on Slurm
// clusters. See the README for the commands and the Slurm hooks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sifkernel/sifkernel/wrapper/cli"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
	"github.com/sifkernel/sifkernel/wrapper/logsetup"
	"github.com/sifkernel/sifkernel/wrapper/runas"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitProblems = 1
	exitUsage    = 2
)

func main() {
	harden(os.Args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, cli.Options{
		Version:      version,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Euid:         os.Geteuid(),
		ConfigureLog: logsetup.Configure,
	}, os.Args)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// harden runs before anything else. As root, no descriptor this process
// inherited may reach a program it starts (the job user's child above
// all); as a hook's child, running as the job user, the user must not be
// able to trace it (see runas.NotDumpable for what that does not stop).
// Neither can fail a hook: a failure is only less protection.
func harden(args []string) {
	if os.Geteuid() == 0 {
		if err := runas.CloseInherited(); err != nil {
			fmt.Fprintf(os.Stderr, "sifkernel: inherited descriptors not closed (carrying on): %v\n", err)
		}
	}
	for i, a := range args {
		if i > 0 && i <= 3 && a == lifecycle.ChildCommand {
			if err := runas.NotDumpable(); err != nil {
				fmt.Fprintf(os.Stderr, "sifkernel: not made non-dumpable (carrying on): %v\n", err)
			}
		}
	}
}

// exitCode is the one place errors become exit codes.
func exitCode(err error, stderr io.Writer) int {
	var usage *cli.UsageError
	var status *cli.ExitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status):
		return status.Code
	case errors.Is(err, cli.ErrProblemsFound):
		return exitProblems
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "sifkernel: %v\nRun 'sifkernel --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "sifkernel: %v\n", err)
	return exitProblems
}
