package cli

import (
	"encoding/json"
	"io"

	"github.com/urfave/cli/v2"
)

// jsonFlag is the --json flag every listing and checking command takes.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print JSON (schema documented in the README)"}

// Schema names of the JSON outputs; a change that breaks readers bumps the version.
const (
	SchemaVersion     = "sifkernel/version/v1"
	SchemaConfig      = "sifkernel/config/v1"
	SchemaKernelList  = "sifkernel/kernel-list/v1"
	SchemaKernelCheck = "sifkernel/kernel-check/v1"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
