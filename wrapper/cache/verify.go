package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/sifkernel/sifkernel/wrapper/fsx"
	"github.com/sifkernel/sifkernel/wrapper/sifimage"
)

// Check is the result of verifying one entry.
type Check struct {
	Key     string `json:"key"`
	Path    string `json:"path"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// Verify re-checks every entry: its size, its SIF header, and its sha256
// when one was recorded at staging.
func (c *Cache) Verify() ([]Check, error) {
	entries, err := c.Entries()
	if err != nil {
		return nil, err
	}
	out := make([]Check, 0, len(entries))
	for _, e := range entries {
		ch := Check{Key: e.Key, Path: e.Path, OK: true}
		if err := verifyEntry(e); err != nil {
			ch.OK, ch.Problem = false, err.Error()
		}
		out = append(out, ch)
	}
	return out, nil
}

func verifyEntry(e Entry) error {
	f, err := fsx.OpenRegular(e.Path, true)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != e.Size {
		return fmt.Errorf("size %d, recorded %d", st.Size(), e.Size)
	}
	if e.SIFID != "" {
		info, err := sifimage.Inspect(f)
		if err != nil {
			return err
		}
		if info.ID != e.SIFID {
			return fmt.Errorf("SIF id %s, recorded %s", info.ID, e.SIFID)
		}
	}
	if e.SHA256 == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("sha256 %s, recorded %s", got, e.SHA256)
	}
	return nil
}
