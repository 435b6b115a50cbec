package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sifkernel/sifkernel/wrapper/apptainer"
	"github.com/sifkernel/sifkernel/wrapper/kernels"
	"github.com/sifkernel/sifkernel/wrapper/kernelspec"
)

// listedKernel is one row of `kernel list --json`.
type listedKernel struct {
	Name        string `json:"name"`
	Dir         string `json:"dir"`
	DataDir     string `json:"data_dir"`
	Origin      string `json:"origin"`
	DisplayName string `json:"display_name"`
	Language    string `json:"language"`
	Container   bool   `json:"container"`
	Image       string `json:"image"`
	ShadowedBy  string `json:"shadowed_by"`
	// JupyterLists says whether Jupyter lists this directory under Name:
	// it wins its name, is a kernel to Jupyter and loads.
	JupyterLists bool   `json:"jupyter_lists"`
	Ignored      string `json:"ignored,omitempty"`    // why Jupyter does not count it as a kernel
	LoadError    string `json:"load_error,omitempty"` // why jupyter_client cannot load it
	Problems     int    `json:"problems"`
}

func (e *env) kernelListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list every kernelspec Jupyter can see, in search order",
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("kernel list takes no arguments")
			}
			return e.kernelList(c, c.Bool("json"))
		},
	}
}

func (e *env) kernelList(c *cli.Context, asJSON bool) error {
	u := e.user()
	entries, _ := u.Select(nil)
	kenv := u.Env()
	findings := kernels.CheckAll(u.Checker(c.Context), entries).Findings
	rows := make([]listedKernel, 0, len(entries))
	for _, en := range entries {
		rows = append(rows, row(en, findings[en.Dir]))
	}
	if asJSON {
		return writeJSON(e.Stdout, struct {
			Schema     string             `json:"schema"`
			Kernels    []listedKernel     `json:"kernels"`
			Jupyter    kernelspec.Jupyter `json:"jupyter"`
			SearchPath []kernelspec.Dir   `json:"search_path"`
		}{SchemaKernelList, rows, kenv.Model().Described(), kenv.SearchPath()})
	}
	defer fmt.Fprintf(e.Stdout, "\nsearch order of the %s\n", kenv.Model())
	if len(rows) == 0 {
		fmt.Fprintln(e.Stdout, "no kernelspecs found; make one with: sifkernel kernel add NAME --image IMAGE.sif")
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCONTAINER\tIMAGE\tPROBLEMS\tDIR")
	for _, r := range rows {
		problems := strconv.Itoa(r.Problems)
		switch {
		case r.Ignored != "":
			problems += " (not a kernel to Jupyter)"
		case r.ShadowedBy != "":
			problems += " (shadowed)"
		case r.LoadError != "":
			problems += " (Jupyter cannot load it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, yesNo(r.Container), dash(r.Image), problems, r.Dir)
	}
	return tw.Flush()
}

func row(en kernelspec.Entry, findings []kernelspec.Finding) listedKernel {
	r := listedKernel{Name: en.Name, Dir: en.Dir, DataDir: en.Data.Path, Origin: en.Data.Origin, ShadowedBy: en.ShadowedBy, Ignored: en.Ignored}
	if en.LoadErr != nil && en.Ignored == "" {
		r.LoadError = en.LoadErr.Error()
	}
	r.JupyterLists = en.Ignored == "" && en.ShadowedBy == "" && en.LoadErr == nil
	for _, f := range findings {
		if f.Severity != kernelspec.Info {
			r.Problems++
		}
	}
	if s := en.Spec; s != nil {
		r.DisplayName, r.Language, r.Container = s.DisplayName, s.Language, kernelspec.IsContainer(s)
		if cmd, err := apptainer.Parse(s.Argv); err == nil && r.Container {
			r.Image = cmd.Image
		}
	}
	return r
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
