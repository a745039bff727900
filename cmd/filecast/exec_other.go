//go:build !linux

package main

import (
	"context"
	"os/exec"
)

// shellCommand returns the command that runs command with sh -c. Without a
// parent-death signal, a receiver that is killed leaves it running.
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "/bin/sh", "-c", command)
}

// runChild starts cmd and waits for it; started runs between the two.
func runChild(cmd *exec.Cmd, started func()) (startErr, waitErr error) {
	if err := cmd.Start(); err != nil {
		return err, nil
	}
	started()
	return nil, cmd.Wait()
}

// runExecGuard does nothing: commands run without a guard here.
func runExecGuard() {}
