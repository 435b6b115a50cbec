// Package templates holds the files sifkernel ships inside its binary: the
// per-language kernel templates and the shell completion scripts.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed kernels/*.json completion/*
var files embed.FS

// Kernel is what a language's kernel runs inside the container.
type Kernel struct {
	Language      string   `json:"language"`
	DisplayName   string   `json:"display_name"` // "{image}" is replaced by the image's name
	Command       []string `json:"command"`      // the kernel command, with {connection_file}
	InterruptMode string   `json:"interrupt_mode"`
}

// Languages lists the languages that have a template.
func Languages() []string {
	ents, _ := fs.Glob(files, "kernels/*.json")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(e, "kernels/"), ".json"))
	}
	sort.Strings(out)
	return out
}

// KernelFor returns the template of a language (python, r, julia).
func KernelFor(language string) (Kernel, error) {
	var k Kernel
	data, err := files.ReadFile("kernels/" + strings.ToLower(language) + ".json")
	if err != nil {
		return k, fmt.Errorf("no kernel template for language %q (have %s)", language, strings.Join(Languages(), ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return k, fmt.Errorf("kernel template %s: %w", language, err)
	}
	return k, nil
}

// Completion returns the completion script for a shell (bash or zsh).
func Completion(shell string) ([]byte, error) {
	b, err := files.ReadFile("completion/" + shell)
	if err != nil {
		return nil, fmt.Errorf("no completion script for shell %q (have bash, zsh)", shell)
	}
	return b, nil
}
