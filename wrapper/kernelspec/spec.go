// Package kernelspec reads, checks, repairs and writes Jupyter kernelspecs,
// and finds them in Jupyter's own search order.
package kernelspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Spec is the content of a kernel.json. Fields sifkernel does not know are
// kept in Extra and written back unchanged (kernel_protocol_version among
// them: Jupyter takes a string or a number there).
type Spec struct {
	Argv          []string
	DisplayName   string
	Language      string
	Env           map[string]string
	InterruptMode string
	Metadata      map[string]json.RawMessage
	Extra         map[string]json.RawMessage

	// order and orig are the file's keys in order and their values as
	// written (NaN, lone surrogates and all), for a spec read by Parse:
	// Encode then writes unchanged values back byte for byte, in place.
	order []string
	orig  map[string]json.RawMessage
	std   map[string]json.RawMessage // orig as Go reads it
}

// Meta is the metadata.sifkernel section sifkernel reads and writes.
type Meta struct {
	Image            string `json:"image,omitempty"`
	GPU              string `json:"gpu,omitempty"` // auto, always or never
	Stage            *bool  `json:"stage,omitempty"`
	CreatedByVersion string `json:"created_by_version,omitempty"`
	// PythonNoUserSite false opts a kernel out of PYTHONNOUSERSITE=1.
	PythonNoUserSite *bool `json:"python_no_user_site,omitempty"`

	// Written into job-time overlays only: where they came from.
	Overlay *Provenance `json:"overlay,omitempty"`
}

// Provenance records how a job-time overlay was made.
type Provenance struct {
	Of               string `json:"of"`           // the user's kernel.json
	Job              string `json:"job"`          // Slurm job id
	Node             string `json:"node"`         // host name
	SourceImage      string `json:"source_image"` // the image the user named
	StagedImage      string `json:"staged_image"` // the node-local copy, or "" when not staged
	NotStaged        string `json:"not_staged,omitempty"`
	GPU              bool   `json:"gpu"`
	GPUReason        string `json:"gpu_reason"`
	Apptainer        string `json:"apptainer"`
	ApptainerVersion string `json:"apptainer_version,omitempty"`
	SifkernelVersion string `json:"sifkernel_version"`
}

// GPU policies a kernel can carry.
const (
	GPUAuto   = "auto"
	GPUAlways = "always"
	GPUNever  = "never"
)

// ConnectionFile is the placeholder Jupyter replaces with the connection file's path.
const ConnectionFile = "{connection_file}"

// UnmarshalJSON reads a kernel.json, checking the type of each known field.
func (s *Spec) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	return s.fromMap(raw)
}

// fromMap fills the known fields from raw and keeps the rest in Extra.
func (s *Spec) fromMap(raw map[string]json.RawMessage) error {
	*s = Spec{}
	fields := []struct {
		key  string
		dst  any
		want string
	}{
		{"argv", &s.Argv, "a list of strings"},
		{"display_name", &s.DisplayName, "a string"},
		{"language", &s.Language, "a string"},
		{"env", &s.Env, "an object of strings"},
		{"interrupt_mode", &s.InterruptMode, "a string"},
		{"metadata", &s.Metadata, "an object"},
	}
	for _, f := range fields {
		v, ok := raw[f.key]
		if !ok {
			continue
		}
		delete(raw, f.key)
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return &FieldError{Field: f.key, Want: f.want}
		}
	}
	if len(raw) > 0 {
		s.Extra = raw
	}
	return nil
}

// MarshalJSON writes the known fields and every preserved unknown one.
// Keys come out sorted, so output is stable.
func (s Spec) MarshalJSON() ([]byte, error) {
	return marshal(s.fields())
}

// fields is the spec as a map of its top-level values.
func (s Spec) fields() map[string]any {
	out := map[string]any{}
	for k, v := range s.Extra {
		out[k] = v
	}
	out["argv"] = nonNil(s.Argv)
	if s.DisplayName != "" {
		out["display_name"] = s.DisplayName
	}
	if s.Language != "" {
		out["language"] = s.Language
	}
	if len(s.Env) > 0 {
		out["env"] = s.Env
	}
	if s.InterruptMode != "" {
		out["interrupt_mode"] = s.InterruptMode
	}
	if len(s.Metadata) > 0 {
		out["metadata"] = s.Metadata
	}
	return out
}

// marshal is json.Marshal without HTML escaping: kernel.json is not HTML,
// and "<" should stay readable in display names.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Encode gives the kernel.json bytes: indented, with HTML characters left
// alone. A spec read from a file keeps that file's key order, and every
// value it did not change is written back exactly as it was.
func (s *Spec) Encode() ([]byte, error) {
	if s.order != nil {
		return s.encodeInPlace()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Sifkernel returns metadata.sifkernel, or the zero Meta if there is none.
func (s *Spec) Sifkernel() (Meta, bool, error) {
	var m Meta
	raw, ok := s.Metadata["sifkernel"]
	if !ok {
		return m, false, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, true, &FieldError{Field: "metadata.sifkernel", Want: "an object with string image and gpu"}
	}
	return m, true, nil
}

// SetSifkernel writes metadata.sifkernel, keeping keys of it that Meta does not know.
func (s *Spec) SetSifkernel(m Meta) error {
	merged := map[string]json.RawMessage{}
	if raw, ok := s.Metadata["sifkernel"]; ok {
		_ = json.Unmarshal(raw, &merged) // an unreadable section is replaced
	}
	b, err := marshal(m)
	if err != nil {
		return err
	}
	var fresh map[string]json.RawMessage
	if err := json.Unmarshal(b, &fresh); err != nil {
		return err
	}
	for _, k := range []string{"image", "gpu", "stage", "created_by_version", "python_no_user_site", "overlay"} {
		delete(merged, k)
	}
	maps.Copy(merged, fresh)
	b, err = marshal(merged)
	if err != nil {
		return err
	}
	if s.Metadata == nil {
		s.Metadata = map[string]json.RawMessage{}
	}
	s.Metadata["sifkernel"] = b
	return nil
}

// FieldError says a known field has the wrong type.
type FieldError struct {
	Field, Want string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q must be %s", e.Field, e.Want) }

var namePattern = regexp.MustCompile(`^[a-z0-9._-]+$`)

// ValidName reports why name cannot be a kernel name: Jupyter's rule
// ^[a-z0-9._-]+$, and never "." or "..", which would name another directory.
func ValidName(name string) error {
	switch {
	case name == "." || name == "..":
		return fmt.Errorf("kernel name %q names a directory, not a kernel", name)
	case !namePattern.MatchString(name):
		hint := ""
		if low := strings.ToLower(name); namePattern.MatchString(low) {
			hint = fmt.Sprintf(" (try %q)", low)
		}
		return fmt.Errorf("kernel name %q: use only lowercase letters, digits, '.', '_' and '-'%s", name, hint)
	}
	return nil
}

// encodeInPlace writes the keys in the file's order (new ones after), each
// unchanged value as the file had it.
func (s *Spec) encodeInPlace() ([]byte, error) {
	now := s.fields()
	keys := slices.Clone(s.order)
	var added []string
	for k := range now {
		if !slices.Contains(keys, k) {
			added = append(added, k)
		}
	}
	sort.Strings(added)
	var buf bytes.Buffer
	buf.WriteString("{")
	n := 0
	for _, k := range append(keys, added...) {
		v, ok := now[k]
		if !ok {
			continue // a field the repair removed
		}
		val, err := s.valueBytes(k, v)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			buf.WriteString(",")
		}
		n++
		key, _ := marshal(k)
		buf.WriteString("\n  ")
		buf.Write(key)
		buf.WriteString(": ")
		buf.Write(val)
	}
	buf.WriteString("\n}\n")
	return buf.Bytes(), nil
}

// valueBytes is the file's own bytes for key if its value did not change,
// else the new value, indented to sit in the object.
func (s *Spec) valueBytes(key string, v any) ([]byte, error) {
	fresh, err := marshal(v)
	if err != nil {
		return nil, err
	}
	if std, ok := s.std[key]; ok && sameJSON(std, fresh) {
		return s.orig[key], nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, fresh, "  ", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sameJSON says whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, _ := marshal(x)
	cb, _ := marshal(y)
	return bytes.Equal(ca, cb)
}
