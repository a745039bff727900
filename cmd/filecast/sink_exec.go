package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/filecast/filecast"
)

// execSink runs a shell command per file with the file on its stdin.
type execSink struct {
	command, channel, group string
	decompress              bool
	stdout, stderr          io.Writer
}

func (s *execSink) handle(ctx context.Context, f *filecast.File) error {
	// A command that is not there is the receiver's fault, not the file's:
	// say so before a byte of the file is read.
	if err := s.missing(); err != nil {
		return err
	}
	cmd := shellCommand(ctx, s.command)
	cmd.Env = append(os.Environ(),
		"FILECAST_NAME="+f.Name,
		"FILECAST_SIZE="+strconv.FormatInt(envSize(f.FileInfo), 10),
		"FILECAST_ID="+f.ID,
		"FILECAST_CHANNEL="+s.channel,
		"FILECAST_GROUP="+s.group,
	)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	startErr, waitErr := runChild(cmd, func() {
		src, done, ierr := input(f, s.decompress)
		if err = ierr; err == nil {
			_, err = io.Copy(stdin, src)
			done()
		}
		stdin.Close()
	})
	if startErr != nil { // no shell, no process, no memory
		return &localError{msg: fmt.Sprintf("cannot start the command %q: %v", s.command, startErr), err: startErr}
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) && (exitErr.ExitCode() == 126 || exitErr.ExitCode() == 127) {
		// sh could not find or run the program, gone since the check
		// above? Then it is not the file's fault.
		if err := s.missing(); err != nil {
			return err
		}
	}
	switch {
	case errors.As(waitErr, &exitErr):
		return fmt.Errorf("command %q exited with status %d", s.command, exitErr.ExitCode())
	case waitErr != nil:
		return fmt.Errorf("command %q: %w", s.command, waitErr)
	case err != nil && !errors.Is(err, syscall.EPIPE):
		// The command succeeded but the file failed (e.g. integrity).
		return err
	}
	// Exit 0. If it stopped reading early (EPIPE), Receive still reads and
	// verifies the rest before acknowledging.
	return nil
}

// missing returns a local error if the command is one simple command
// (program) whose program cannot be found in PATH or is not executable.
// Of any other command sh alone knows what runs: an exit status of 127 or
// 126 from it (a word not found, or a script's own exit status) is a
// handler failure like any other.
func (s *execSink) missing() error {
	prog := program(s.command)
	if prog == "" {
		return nil
	}
	if _, err := exec.LookPath(prog); err != nil {
		return &localError{msg: fmt.Sprintf("the command %q cannot run: %v", s.command, err), err: err}
	}
	return nil
}

// program returns the program a shell command runs if the command is one
// simple command — a program and its arguments: no operator (; | & && ||),
// subshell, substitution, redirection or second line, and not starting with
// a builtin, a keyword, an assignment or an expansion — else "".
func program(command string) string {
	if strings.ContainsAny(command, ";|&()`<>\n") {
		return ""
	}
	fields := strings.Fields(command)
	if len(fields) == 0 {
		return ""
	}
	word := fields[0]
	if strings.ContainsAny(word, "$`'\"*?[]{}()<>|&;=~\\!#") || shellWords[word] {
		return ""
	}
	return word
}

// envSize is FILECAST_SIZE: the file's size if known, else the size its
// sender expects, else -1.
func envSize(f filecast.FileInfo) int64 {
	if f.Size < 0 && f.Expected > 0 {
		return f.Expected
	}
	return f.Size
}

// shellWords are the words a command may start with that are not programs.
var shellWords = map[string]bool{":": true, ".": true, "source": true, "exec": true, "eval": true, "command": true,
	"set": true, "cd": true, "echo": true, "printf": true, "read": true, "test": true, "true": true, "false": true,
	"if": true, "for": true, "while": true, "until": true, "case": true, "export": true, "trap": true, "wait": true,
	"exit": true, "return": true, "shift": true, "unset": true, "ulimit": true, "umask": true, "type": true}
