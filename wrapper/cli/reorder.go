package cli

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// reorder lets flags follow positional arguments, as in
// `sifkernel kernel add NAME --image X`: urfave/cli v2 stops reading flags at
// the first positional argument, so the leaf command's flags are moved in
// front of its positional ones. Everything after "--" stays as it is.
func reorder(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, cmds := app.Flags, app.Commands
	for {
		pre, tail := takeFlags(rest, flags)
		out = append(out, pre...)
		rest = tail
		if len(rest) == 0 || rest[0] == "--" {
			return append(out, rest...)
		}
		cmd := findCommand(cmds, rest[0])
		if cmd == nil {
			return append(out, rest...)
		}
		out = append(out, rest[0])
		rest = rest[1:]
		if cmd.SkipFlagParsing {
			return append(out, rest...) // its arguments belong to another program
		}
		if len(cmd.Subcommands) == 0 {
			return append(out, leafArgs(rest, cmd.Flags)...)
		}
		flags, cmds = cmd.Flags, cmd.Subcommands
	}
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if slices.Contains(c.Names(), name) {
			return c
		}
	}
	return nil
}

// takeFlags splits off the leading flags (with their values).
func takeFlags(args []string, flags []cli.Flag) (pre, rest []string) {
	for len(args) > 0 && isFlag(args[0]) {
		n := flagWidth(args, flags)
		pre, args = append(pre, args[:n]...), args[n:]
	}
	return pre, args
}

// leafArgs puts a command's flags first, then its positional arguments.
func leafArgs(args []string, flags []cli.Flag) []string {
	var fl, pos []string
	for len(args) > 0 {
		switch {
		case args[0] == "--":
			return append(append(fl, "--"), append(pos, args[1:]...)...)
		case isFlag(args[0]):
			n := flagWidth(args, flags)
			fl, args = append(fl, args[:n]...), args[n:]
		default:
			pos, args = append(pos, args[0]), args[1:]
		}
	}
	if slices.ContainsFunc(pos, isFlag) {
		return append(append(fl, "--"), pos...)
	}
	return append(fl, pos...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagWidth says how many elements the flag at args[0] spans: two when it
// takes a value written separately.
func flagWidth(args []string, flags []cli.Flag) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") || len(args) < 2 {
		return 1
	}
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		if _, ok := f.(*cli.BoolFlag); ok {
			return 1
		}
		return 2
	}
	return 1
}
