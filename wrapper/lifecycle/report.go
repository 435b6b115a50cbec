package lifecycle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// A user part's report comes from the job user's process, which the user
// can trace and make print anything (within runas.MaxStdout): root takes
// from it only what it can bound. Decoding keeps at most this many kernels
// and warnings, counts the rest, and never holds more than one of the
// dropped elements at a time.
const (
	maxReportKernels  = 10000 // kernel.max_per_job's ceiling
	maxReportWarnings = 16
)

// decodeReport decodes a child's report within those bounds.
func decodeReport(data []byte, r *Report) error {
	var raw struct {
		Report
		Kernels  json.RawMessage `json:"kernels"`
		Warnings json.RawMessage `json:"warnings"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*r = raw.Report
	var err error
	if r.Kernels, r.droppedKernels, err = decodeList[KernelReport](raw.Kernels, maxReportKernels); err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	if r.Warnings, r.droppedWarnings, err = decodeList[string](raw.Warnings, maxReportWarnings); err != nil {
		return fmt.Errorf("warnings: %w", err)
	}
	r.bound()
	return nil
}

// decodeList decodes a JSON array (or null) element by element, keeping
// the first max and counting the others.
func decodeList[T any](data []byte, max int) ([]T, int, error) {
	if len(data) == 0 || string(data) == "null" {
		return nil, 0, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if tok, err := d.Token(); err != nil || tok != json.Delim('[') {
		return nil, 0, fmt.Errorf("not a list")
	}
	var out []T
	dropped := 0
	for d.More() {
		if len(out) < max {
			var v T
			if err := d.Decode(&v); err != nil {
				return nil, 0, err
			}
			out = append(out, v)
			continue
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, 0, err
		}
		dropped++
	}
	return out, dropped, nil
}

// cutOff are the images whose copies this user part ran out of time on
// (see UserPartOptions.CutOff), among the first maxKernels kernels and
// within maxCutOffBytes: the report is the user's, and the list goes back
// to her next child in its argv, where one argument may not pass 128 KiB.
func (r Report) cutOff(maxKernels int) []string {
	var images []string
	n := 0
	for i, k := range r.Kernels {
		if i >= maxKernels {
			break
		}
		if k.TimedOut && !k.Site && k.Image != "" && !slices.Contains(images, k.Image) && n+len(k.Image) <= maxCutOffBytes {
			images = append(images, k.Image)
			n += len(k.Image)
		}
	}
	return images
}

// maxCutOffBytes bounds the paths Report.cutOff returns, together.
const maxCutOffBytes = 32 << 10
