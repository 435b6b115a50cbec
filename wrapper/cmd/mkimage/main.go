// Command mkimage writes a small, real SIF image for examples, tests and
// benchmarks: its root filesystem is sifimage.Minimal (a marker file and the
// mount points a runtime needs), or the squashfs file given with -rootfs,
// streamed, so benchmark images of several GiB need little memory.
//
//	go run ./wrapper/cmd/mkimage [-rootfs FILE.squashfs] OUT.sif
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

func main() {
	rootfs := flag.String("rootfs", "", "squashfs `FILE` to use as the root filesystem")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkimage [-rootfs FILE.squashfs] OUT.sif")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *rootfs); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, rootfs string) error {
	var r io.Reader = bytes.NewReader(sifimage.Minimal)
	if rootfs != "" {
		f, err := os.Open(rootfs)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return sifimage.Build(out, r)
}
