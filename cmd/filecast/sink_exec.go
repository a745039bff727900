package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
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
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", s.command)
	cmd.Env = append(os.Environ(),
		"FILECAST_NAME="+f.Name,
		"FILECAST_SIZE="+strconv.FormatInt(f.Size, 10),
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
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %q: %w", s.command, err)
	}
	src, done, err := input(f, s.decompress)
	if err == nil {
		_, err = io.Copy(stdin, src)
		done()
	}
	stdin.Close()
	waitErr := cmd.Wait()
	var exitErr *exec.ExitError
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
