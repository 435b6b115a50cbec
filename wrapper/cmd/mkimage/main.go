// Command mkimage writes a small, real SIF image for examples and tests: its
// root filesystem is sifimage.Minimal (a marker file and the mount points a
// runtime needs), or the squashfs file given with -rootfs.
//
//	go run ./wrapper/cmd/mkimage [-rootfs FILE.squashfs] OUT.sif
package main

import (
	"flag"
	"fmt"
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
	data := sifimage.Minimal
	if *rootfs != "" {
		var err error
		if data, err = os.ReadFile(*rootfs); err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
	}
	if err := sifimage.Build(flag.Arg(0), data); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
