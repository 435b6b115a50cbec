package sifimage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

func TestBuildAndInspect(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.sif")
	if err := Build(p, bytes.NewReader(Minimal)); err != nil {
		t.Fatal(err)
	}
	info, err := inspectPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.RootfsSize != int64(len(Minimal)) || info.RootfsFSType != "Squashfs" || info.ID == "" {
		t.Errorf("Inspect = %+v", info)
	}
	f, _ := os.Open(p)
	defer f.Close()
	if !HasMagic(f) {
		t.Error("HasMagic = false for a SIF")
	}
}

func TestInspectCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.sif")
	if err := Build(good, bytes.NewReader(Minimal)); err != nil {
		t.Fatal(err)
	}
	data := testkit.ReadFile(t, good)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "truncated", data: data[:len(data)-100], want: "truncated"},
		{name: "bad version", data: append(append(append([]byte{}, data[:41]...), "99"...), data[43:]...), want: "header"},
		{name: "empty", data: nil, want: "header"},
		{name: "not a sif", data: []byte(strings.Repeat("x", 200)), want: "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			testkit.Must(t, os.WriteFile(p, tt.data, 0o644))
			_, err := inspectPath(p)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Inspect = %v, want ErrCorrupt mentioning %q", err, tt.want)
			}
		})
	}
}

func inspectPath(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	return Inspect(f)
}
