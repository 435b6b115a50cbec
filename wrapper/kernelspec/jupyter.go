package kernelspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// What jupyter_client 7.4 (Debian 12) does with a kernel directory, read from
// its kernelspec.py and provisioning/factory.py, and checked against it by
// the differential test (jupyter_diff_test.go).

// PyLower lowercases as Python's str.lower does, which is how Jupyter folds
// kernel names: like Go's strings.ToLower, except that İ becomes "i̇" (two
// code points) and a final Σ becomes ς.
func PyLower(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && finalSigma(rs, i):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// finalSigma is Unicode's Final_Sigma condition, which Python applies: a
// cased letter before (skipping case-ignorable ones), none after.
func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if caseIgnorable(rs[j]) {
			continue
		}
		before = cased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if caseIgnorable(rs[j]) {
			continue
		}
		return !cased(rs[j])
	}
	return true
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || strings.ContainsRune("'.:·‘’․﹒＇．：", r)
}

// JupyterValidName reports whether Jupyter takes name without a warning: its
// pattern ^[a-z0-9._\-]+$ with re.IGNORECASE, as Python's re applies it:
// Python's case folding also lets İ, ı, ſ and the Kelvin sign match, and $
// matches before one final newline.
func JupyterValidName(name string) bool {
	name = strings.TrimSuffix(name, "\n")
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		case r == 'İ', r == 'ı', r == 'ſ', r == 'K':
		default:
			return false
		}
	}
	return true
}

// LoadError is a kernel.json that jupyter_client cannot load: Jupyter
// leaves the kernel out of its list, and says why only in its log.
type LoadError struct {
	File   string
	Reason string
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%s: jupyter_client cannot load it: %s", e.File, e.Reason)
}

// Provisioners are the kernel provisioners Debian's jupyter_client has.
var Provisioners = []string{"local-provisioner"}

// jupyterLoad says why jupyter_client would not load a parsed kernel.json
// (KernelSpec(**json.load(f)) with traitlets' checks, then the provisioner
// lookup), or nil if it would.
func jupyterLoad(sc *scanned) string {
	if !sc.Object {
		return "the top level is not an object"
	}
	last := map[string][]byte{}
	for _, m := range sc.Members {
		last[m.Key] = m.Std
	}
	if _, ok := last["resource_dir"]; ok {
		return `it has a "resource_dir" key, which jupyter_client passes itself (TypeError)`
	}
	for _, f := range []struct {
		key   string
		kinds string // JSON kinds traitlets accepts: s string, l list, o object
	}{
		{"argv", "ls"}, {"display_name", "s"}, {"language", "s"}, {"mimetype", "s"}, {"name", "s"},
		{"env", "o"}, {"metadata", "o"}, {"interrupt_mode", "s"},
	} {
		v, ok := last[f.key]
		if !ok {
			continue
		}
		if k := jsonKind(v); !strings.ContainsRune(f.kinds, k) {
			return fmt.Sprintf("%q is %s; it must be %s (TraitError)", f.key, kindName(k), kindNames(f.kinds))
		}
	}
	if v, ok := last["interrupt_mode"]; ok {
		if m := strings.ToLower(goString(v)); m != "signal" && m != "message" {
			return fmt.Sprintf(`"interrupt_mode" is %s; it must be "signal" or "message" (TraitError)`, v)
		}
	}
	if v, ok := last["metadata"]; ok {
		return provisionerProblem(v)
	}
	return ""
}

// provisionerProblem follows jupyter_client's reading of
// metadata.kernel_provisioner: an object naming an installed provisioner, or
// nothing (the default); other values fail in odd but certain ways.
func provisionerProblem(metadata []byte) string {
	var md map[string]any
	if json.Unmarshal(metadata, &md) != nil {
		return ""
	}
	kp, ok := md["kernel_provisioner"]
	if !ok {
		return ""
	}
	switch v := kp.(type) {
	case map[string]any:
		name, ok := v["provisioner_name"]
		if !ok {
			return ""
		}
		s := pyStr(name)
		for _, p := range Provisioners {
			if s == p {
				return ""
			}
		}
		return fmt.Sprintf("metadata.kernel_provisioner names provisioner %q, which this jupyter_client does not have (it has %s)", s, strings.Join(Provisioners, ", "))
	case string:
		if strings.Contains(v, "provisioner_name") {
			return "metadata.kernel_provisioner is a string, not an object (AttributeError)"
		}
	case []any:
		for _, x := range v {
			if x == "provisioner_name" {
				return "metadata.kernel_provisioner is a list, not an object (AttributeError)"
			}
		}
	default:
		return "metadata.kernel_provisioner is not an object (TypeError)"
	}
	return ""
}

// pyStr is Python's str() of a JSON value, for the provisioner name.
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// jsonKind is the kind of a JSON value: s string, l list, o object, n null,
// b boolean, d number.
func jsonKind(v []byte) rune {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 'n'
	}
	switch v[0] {
	case '"':
		return 's'
	case '[':
		return 'l'
	case '{':
		return 'o'
	case 'n':
		return 'n'
	case 't', 'f':
		return 'b'
	}
	return 'd'
}

func kindName(k rune) string {
	return map[rune]string{'s': "a string", 'l': "a list", 'o': "an object", 'n': "null (or NaN)", 'b': "a boolean", 'd': "a number"}[k]
}

func kindNames(kinds string) string {
	var out []string
	for _, k := range kinds {
		out = append(out, kindName(k))
	}
	return strings.Join(out, " or ")
}

// ErrIgnored marks a directory Jupyter does not count as a kernel.
var ErrIgnored = errors.New("not a kernel for Jupyter")
