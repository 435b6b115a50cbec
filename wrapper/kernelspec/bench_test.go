package kernelspec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// benchLayout makes 500 container kernels in 5 data dirs, all using one SIF.
func benchLayout(b *testing.B) Env {
	root := b.TempDir()
	img := filepath.Join(root, "img.sif")
	if err := sifimage.Build(img, bytes.NewReader(sifimage.Minimal)); err != nil {
		b.Fatal(err)
	}
	var path []string
	for d := 1; d <= 5; d++ {
		jp := filepath.Join(root, fmt.Sprintf("jp%d", d))
		path = append(path, jp)
		for k := 1; k <= 100; k++ {
			dir := filepath.Join(jp, "kernels", fmt.Sprintf("k%d-%d", d, k))
			testkit.Must(b, os.MkdirAll(dir, 0o755))
			body := fmt.Sprintf(`{"argv": ["/usr/bin/apptainer", "exec", %q, "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "k", "language": "python"}`, img)
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	env := map[string]string{"HOME": filepath.Join(root, "home"), "JUPYTER_PATH": strings.Join(path, ":"), "PATH": os.Getenv("PATH")}
	return Env{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

// BenchmarkDiscover500 is kernel list's work: find and read 500 kernels.
func BenchmarkDiscover500(b *testing.B) {
	env := benchLayout(b)
	for b.Loop() {
		if n := len(env.Kernels()); n < 500 {
			b.Fatalf("found %d", n)
		}
	}
}

// BenchmarkCheck500 is kernel check's work: find, read and check 500 kernels.
func BenchmarkCheck500(b *testing.B) {
	env := benchLayout(b)
	c := Checker{Env: env, GPUFlag: "--nv"}
	for b.Loop() {
		for _, e := range env.Kernels() {
			c.Check(e)
		}
	}
}

// BenchmarkDetectJupyter is what every kernel command and user part adds
// to find the Jupyter it models: PATH's jupyter, its Python, its
// site directories (this machine's PATH).
func BenchmarkDetectJupyter(b *testing.B) {
	vars := map[string]string{"PATH": os.Getenv("PATH"), "HOME": b.TempDir()}
	env := Env{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	for b.Loop() {
		DetectJupyter(env)
	}
}
