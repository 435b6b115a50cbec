// Package sifimage checks SIF container images read-only, and builds small
// real ones for examples and tests.
package sifimage

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/apptainer/sif/v2/pkg/sif"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
)

// magicOffset and magic locate SIF's signature: a 32-byte launch script comes first.
const magicOffset = 32

var magic = []byte("SIF_MAGIC")

// Minimal is a tiny squashfs root filesystem: the mount points a runtime
// needs and a file /sifkernel-marker. gen-minimal.sh regenerates it.
//
//go:embed minimal.squashfs
var Minimal []byte

// ErrCorrupt marks an image that claims to be a SIF but cannot be used.
var ErrCorrupt = errors.New("corrupt SIF")

// Info describes a SIF image.
type Info struct {
	ID            string `json:"id"`
	Arch          string `json:"arch"`
	Size          int64  `json:"size"`
	RootfsOffset  int64  `json:"rootfs_offset"`
	RootfsSize    int64  `json:"rootfs_size"`
	RootfsFSType  string `json:"rootfs_fs"`
	ModifiedAtUTC string `json:"modified_at"`
}

// HasMagic reports whether r starts like a SIF file.
func HasMagic(r io.ReaderAt) bool {
	buf := make([]byte, len(magic))
	_, err := r.ReadAt(buf, magicOffset)
	return err == nil && bytes.Equal(buf, magic)
}

// Inspect opens f read-only as a SIF and checks it can be run: a valid header,
// a primary system partition, and every data object inside the file (a
// truncated copy fails here). Errors wrap ErrCorrupt.
func Inspect(f *os.File) (Info, error) {
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	img, err := sif.LoadContainer(f, sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return Info{}, fmt.Errorf("%w: reading header: %v", ErrCorrupt, err)
	}
	defer func() { _ = img.UnloadContainer() }() // opened read-only
	var bad error
	img.WithDescriptors(func(d sif.Descriptor) bool {
		if d.Offset() < 0 || d.Size() < 0 || d.Offset()+d.Size() > st.Size() {
			bad = fmt.Errorf("%w: object %d (%s) ends at byte %d, past the end of the %d-byte file (truncated?)",
				ErrCorrupt, d.ID(), d.DataType(), d.Offset()+d.Size(), st.Size())
			return true
		}
		return false
	})
	if bad != nil {
		return Info{}, bad
	}
	d, err := img.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return Info{}, fmt.Errorf("%w: no root filesystem partition: %v", ErrCorrupt, err)
	}
	fs, _, arch, err := d.PartitionMetadata()
	if err != nil {
		return Info{}, fmt.Errorf("%w: root filesystem metadata: %v", ErrCorrupt, err)
	}
	return Info{
		ID: img.ID(), Arch: arch, Size: st.Size(),
		RootfsOffset: d.Offset(), RootfsSize: d.Size(), RootfsFSType: fs.String(),
		ModifiedAtUTC: img.ModifiedAt().UTC().Format(time.RFC3339),
	}, nil
}

// Build writes a SIF at path whose primary partition is the squashfs image
// read from rootfs. The file is written under a temporary name and renamed
// into place.
func Build(path string, rootfs io.Reader) error {
	p, err := fsx.Reserve(path)
	if err != nil {
		return err
	}
	defer p.Cleanup()
	tmp := p.Name()
	di, err := sif.NewDescriptorInput(sif.DataPartition, rootfs,
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, runtime.GOARCH))
	if err != nil {
		return fmt.Errorf("building SIF %s: %w", path, err)
	}
	img, err := sif.CreateContainerAtPath(tmp, sif.OptCreateWithDescriptors(di),
		sif.OptCreateWithLaunchScript("#!/usr/bin/env run-singularity\n"))
	if err != nil {
		return fmt.Errorf("building SIF %s: %w", path, err)
	}
	if err := img.UnloadContainer(); err != nil {
		return fmt.Errorf("building SIF %s: %w", path, err)
	}
	return p.Publish(0, fsx.Volatile)
}
