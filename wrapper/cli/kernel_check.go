package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
	"github.com/sifkernel/sifkernel/wrapper/lifecycle"
)

// checkedKernel is one kernel in `kernel check --json`.
type checkedKernel struct {
	Name     string               `json:"name"`
	File     string               `json:"file"`
	Findings []kernelspec.Finding `json:"findings"`
}

func (e *env) kernelCheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "lint kernelspecs; exits 1 when any error is found",
		ArgsUsage: "[NAME...]",
		Description: "Checks each kernelspec as Jupyter reads it and against this node: the\n" +
			"Apptainer, the image, the connection file's directory. Exit status 1 when\n" +
			"any finding is an error. The codes (severity; whether kernel fix repairs it):\n\n" +
			kernelspec.RulesText(),
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			return e.kernelCheck(c, c.Args().Slice(), c.Bool("json"))
		},
	}
}

func (e *env) kernelCheck(c *cli.Context, names []string, asJSON bool) error {
	u := e.user()
	entries, err := u.Select(names)
	if err != nil {
		return err
	}
	checked := kernels.CheckAll(u.Checker(c.Context), entries)
	findings, errs, warns := checked.Findings, checked.Errors, checked.Warnings
	jobPath := e.lifecycle().JobPath(e.Home)
	if jobPath.Warning {
		warns++
	}
	if asJSON {
		out := make([]checkedKernel, 0, len(entries))
		for _, en := range entries {
			fs := findings[en.Dir]
			if fs == nil {
				fs = []kernelspec.Finding{}
			}
			out = append(out, checkedKernel{Name: en.Name, File: en.File(), Findings: fs})
		}
		err = writeJSON(e.Stdout, struct {
			Schema   string             `json:"schema"`
			Kernels  []checkedKernel    `json:"kernels"`
			Errors   int                `json:"errors"`
			Warnings int                `json:"warnings"`
			Jupyter  kernelspec.Jupyter `json:"jupyter"`
			JobPath  lifecycle.JobPath  `json:"job_path"`
		}{SchemaKernelCheck, out, errs, warns, u.Env().Model().Described(), jobPath})
	} else {
		for _, en := range entries {
			for _, f := range findings[en.Dir] {
				fmt.Fprintln(e.Stdout, f)
			}
		}
		if jobPath.Warning {
			fmt.Fprintf(e.Stdout, "warning: %s\n", jobPath.Says)
		}
		_, err = fmt.Fprintf(e.Stdout, "%d kernels checked: %d errors, %d warnings\nas seen by the %s\n", len(entries), errs, warns, u.Env().Model())
	}
	if err == nil && errs > 0 {
		return ErrProblemsFound
	}
	return err
}
