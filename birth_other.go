//go:build !linux

package filecast

import "time"

// birthTime returns when the file at path was created, where the file
// system records it.
func birthTime(path string) (time.Time, bool) { return time.Time{}, false }
