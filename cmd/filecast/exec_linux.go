//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// An --exec command must not outlive its receiver: a receiver that is
// killed (SIGKILL, the OOM killer) would leave it running, reading what
// looks like the end of its input. A parent-death signal reaches only the
// direct child, and sh forks the command, so the command runs under a
// guard: this binary again (guardArg), leading a process group of its own
// with sh in it. When the receiver dies the guard gets SIGHUP and kills the
// whole group; when the receiver cancels the file it sends the guard
// SIGTERM, which the guard passes on to the group, killing it after
// guardGrace.

// guardArg, as the first argument, runs the binary as the guard of the
// command that follows.
const guardArg = "__filecast_exec_guard__"

const guardGrace = 4 * time.Second

// shellCommand returns the command that runs command with sh -c under a
// guard (exec.CommandContext: ctx ends it).
func shellCommand(ctx context.Context, command string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/proc/self/exe", guardArg, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGHUP}
	return cmd
}

// runChild starts cmd, from shellCommand, and waits for it. The parent-death
// signal is sent when the OS thread that started the child exits, not the
// process (the Go runtime ends a thread whose goroutine exits while locked
// to it), so the thread is kept to this goroutine, and thus alive, for the
// child's whole life. started runs between Start and Wait.
func runChild(cmd *exec.Cmd, started func()) (startErr, waitErr error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err, nil
	}
	started()
	return nil, cmd.Wait()
}

// runExecGuard, in the guard process (first argument guardArg), runs the
// command that follows the argument and exits with its status; when the
// receiver dies or cancels the file, it kills the group instead, itself
// included. Elsewhere it returns at once.
//
// Being in a process group of its own, the command is not in the
// terminal's foreground: one that reads the terminal is stopped (SIGTTIN).
// Its input is the file anyway.
func runExecGuard() {
	if len(os.Args) < 3 || os.Args[1] != guardArg {
		return
	}
	// A receiver that died before this could listen has killed it already:
	// os/exec checks the parent right after setting the signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "filecast: cannot start %s: %v\n", os.Args[2], err)
		os.Exit(127)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case sig := <-sigs:
		if sig != syscall.SIGHUP {
			// The file was cancelled: let the command stop (the guard,
			// in the group too, ignores it from now on).
			signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
			syscall.Kill(0, syscall.SIGTERM)
			select {
			case <-done:
			case <-sigs: // SIGHUP: the receiver died meanwhile
			case <-time.After(guardGrace):
			}
		}
		syscall.Kill(0, syscall.SIGKILL) // the group, this guard too
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
