package config

import (
	"reflect"
	"strings"
)

// Setting is one effective value and where it came from.
type Setting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source Source `json:"source"`
}

// Settings lists every key in a fixed order (the order of the Config struct).
func (l *Loaded) Settings() []Setting {
	var out []Setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			f := v.Field(i)
			if f.Kind() == reflect.Struct && !f.Addr().Type().Implements(textUnmarshaler) {
				walk(f, prefix+tag+".")
				continue
			}
			key := prefix + tag
			out = append(out, Setting{Key: key, Value: textValue(f), Source: l.Source(key)})
		}
	}
	walk(reflect.ValueOf(&l.Config).Elem(), "")
	return out
}

// textValue gives sizes and durations as the text a config file would hold.
func textValue(f reflect.Value) any {
	if m, ok := f.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if f.Kind() == reflect.Slice && f.IsNil() {
		return []string{}
	}
	return f.Interface()
}
