package main

import "github.com/filecast/filecast"

// localError is a fault of the receiver's own side (filecast.ErrLocal), in
// its own words: the --exec command cannot be found or started.
type localError struct {
	msg string
	err error
}

func (e *localError) Error() string   { return e.msg }
func (e *localError) Unwrap() []error { return []error{filecast.ErrLocal, e.err} }
