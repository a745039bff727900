package wire

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on names. They match common file-system limits so that a name that
// passes CheckName can be created on the receiving side.
const (
	MaxNameLen      = 4096 // bytes in a whole name
	MaxComponentLen = 255  // bytes in one slash-separated component
	MaxChannelLen   = 200  // bytes in a channel or group name
)

// CheckName reports whether name is safe to use as a relative path below a
// receiver's target directory. A valid name is a slash-separated relative
// path of valid UTF-8 with no empty, "." or ".." components, no leading or
// trailing slash, no backslash, and no control characters. Names are never
// cleaned: two names that would collide after cleaning are both rejected
// rather than silently merged.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty file name", ErrMalformed)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: file name is %d bytes, longer than %d", ErrMalformed, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: file name %q is not valid UTF-8", ErrMalformed, name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: file name %q is absolute", ErrMalformed, name)
	case strings.ContainsRune(name, '\\'):
		return fmt.Errorf("%w: file name %q contains a backslash", ErrMalformed, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: file name %q contains control character %U", ErrMalformed, name, r)
		}
	}
	for part := range strings.SplitSeq(name, "/") {
		switch {
		case part == "":
			return fmt.Errorf("%w: file name %q has an empty path component", ErrMalformed, name)
		case part == "." || part == "..":
			return fmt.Errorf("%w: file name %q contains a %q component", ErrMalformed, name, part)
		case len(part) > MaxComponentLen:
			return fmt.Errorf("%w: file name %q has a component longer than %d bytes", ErrMalformed, name, MaxComponentLen)
		}
	}
	return nil
}

// CheckChannel reports whether s is usable as a channel or group name. Such
// names become part of Redis keys, so braces (hash tags), colons (the key
// separator) and white space are refused.
func CheckChannel(kind, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	if len(s) > MaxChannelLen {
		return fmt.Errorf("%s name is %d bytes, longer than %d", kind, len(s), MaxChannelLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s name %q is not valid UTF-8", kind, s)
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f || r == '{' || r == '}' || r == ':' || r == '*' || r == '?' || r == '[' || r == ']' {
			return fmt.Errorf("%s name %q contains %q; use letters, digits and . _ - /", kind, s, r)
		}
	}
	return nil
}
