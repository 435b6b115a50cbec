// Command genman writes sifkernel's manual pages, generated from the
// commands themselves, into a directory (make man, make install, make
// package):
//
//	go run ./wrapper/cmd/genman -version 1.2.3 -config examples/config.toml -o build/man
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sifkernel/sifkernel/wrapper/cli"
)

func main() {
	out := flag.String("o", "man", "output `DIR`")
	version := flag.String("version", "dev", "the version the pages name")
	example := flag.String("config", "examples/config.toml", "the annotated example config `FILE`")
	flag.Parse()
	if err := run(*out, *version, *example); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

func run(out, version, example string) error {
	cfg, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	pages, err := cli.ManPages(version, cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, p := range pages {
		if err := os.WriteFile(filepath.Join(out, p.Name), p.Roff, 0o644); err != nil {
			return err
		}
	}
	return nil
}
