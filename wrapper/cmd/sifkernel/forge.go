//go:build sifkernel_forge

// This file is built only into the hostile-user suite's second binary
// (go build -tags sifkernel_forge, wrapper/hostile). A hook's child runs as
// the job user, who can trace it (ptrace, where kernel.yama.ptrace_scope
// is 0 and the child is caught before it makes itself non-dumpable) and
// make it do and print anything. Rather than drive ptrace, this binary's
// children do exactly that on their own: write to every descriptor they
// might have inherited, print a forged report of runas.MaxStdout bytes,
// and clean up nothing while saying they did. The root side is the real
// one, unchanged.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

func init() {
	for i, a := range os.Args {
		if i > 0 && i <= 3 && a == "internal" && i+1 < len(os.Args) {
			forge(os.Args[i+1])
			os.Exit(0)
		}
	}
}

// ForgedWrite is what the forged child writes to any descriptor it has.
const ForgedWrite = "FORGED-WRITE-THROUGH-AN-INHERITED-DESCRIPTOR"

func forge(kind string) {
	for fd := 3; fd < 256; fd++ {
		_, _ = syscall.Write(fd, []byte(ForgedWrite))
	}
	switch kind {
	case "user-part":
		_, _ = os.Stdout.WriteString(`{"user_part":` + forgedReport(1<<20-16) + `}`)
	case "user-usage":
		fmt.Print(`{"usage":{"entries":-2147483648,"bytes":9200000000000000000,"size":1,"free":1}}`)
	}
}

// forgedReport is a user part's report of size bytes: as many kernels as
// fit, each claiming a petabyte copied in a billion seconds, with names
// that try to start log lines of their own, then as many warnings.
func forgedReport(size int) string {
	var b strings.Builder
	b.WriteString(`{"job":"0","job_dir":"/forged","node":"x","gpu":{"present":true,"reason":"forged"},"kernels":[`)
	kernel := `{"name":"k\nlevel=error msg=FORGED","staged":true,"copied":true,"bytes":1125899906842624,"stage_seconds":1e9,"image":"/x","skipped":false},`
	for b.Len() < size*3/4 {
		b.WriteString(kernel)
	}
	b.WriteString(`{"name":"last","staged":false,"skipped":true}],"warnings":[`)
	for b.Len() < size-64 {
		b.WriteString(`"w\nFORGED",`)
	}
	b.WriteString(`"end"],"over_limit":2147483647}`)
	return b.String()
}
