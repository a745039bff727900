// Command filecast distributes files to many machines through Redis.
//
// Run "filecast --help" for the commands; README.md has examples.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/filecast/filecast"
)

// Exit codes: scripts can branch on them (documented in README.md).
const (
	exitOK          = 0
	exitError       = 1   // any other failure
	exitUsage       = 2   // bad flags, arguments or options
	exitIntegrity   = 3   // a file failed its integrity check
	exitUnavailable = 4   // Redis unreachable, refused the credentials, or is unsafe
	exitLocal       = 5   // the receiver's own side failed (recv --fail-fast); the file stays in Redis
	exitInterrupted = 130 // SIGINT or SIGTERM
)

func main() {
	runExecGuard() // the guard of a recv --exec command (exec_linux.go) exits here
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	cmd, err := newRoot().ExecuteContextC(ctx)
	err = unknownCommand(cmd, err)
	stopProfile()
	interrupted := ctx.Err() != nil
	stop()
	os.Exit(report(err, interrupted))
}

// startProfile writes a CPU profile to $FILECAST_CPUPROFILE, an allocation
// profile to $FILECAST_MEMPROFILE and an execution trace to
// $FILECAST_TRACE, for performance work (see make bench).
func startProfile() (stop func()) {
	var stops []func()
	if path := os.Getenv("FILECAST_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("FILECAST_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil && trace.Start(f) == nil {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	if path := os.Getenv("FILECAST_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 64 << 10
		stops = append(stops, func() {
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

// report prints err as one line and returns the exit code for it. A
// command run with --json gets it as a JSON object on its JSON stream
// (reportJSON).
func report(err error, interrupted bool) int {
	if err == nil {
		return exitOK
	}
	err = inCLIWords(err)
	code, msg := exitError, err.Error()
	var said interruptedError
	switch {
	case errors.As(err, &said):
		code = exitInterrupted
	case interrupted || errors.Is(err, context.Canceled):
		code = exitInterrupted
		msg = "interrupted; run the same command again to resume"
	case errors.As(err, new(usageError)) || errors.Is(err, filecast.ErrUsage):
		code = exitUsage
	case errors.Is(err, filecast.ErrLocal):
		code = exitLocal
	case errors.Is(err, filecast.ErrCorrupt):
		code = exitIntegrity
	case errors.Is(err, filecast.ErrUnavailable), errors.Is(err, filecast.ErrAuth), errors.Is(err, filecast.ErrEviction):
		code = exitUnavailable
	}
	if !reportJSON(err, msg, code) {
		fmt.Fprintf(os.Stderr, "filecast: %s\n", msg)
	}
	return code
}

// unknownCommand turns cobra's error for a command that does not exist
// ("filecast sned"), which only a command that runs nothing itself can
// return, into a one-line usage error (exit 2) with cobra's suggestions.
func unknownCommand(cmd *cobra.Command, err error) error {
	if err == nil || cmd == nil || cmd.Runnable() || errors.As(err, new(usageError)) {
		return err
	}
	// "unknown command \"sned\" for \"filecast\"\n\nDid you mean this?\n\tsend\n"
	msg, more, _ := strings.Cut(err.Error(), "\n")
	var suggestions []string
	for _, l := range strings.Split(more, "\n") {
		if strings.HasPrefix(l, "\t") {
			suggestions = append(suggestions, strings.TrimSpace(l))
		}
	}
	if len(suggestions) > 0 {
		msg += "; did you mean " + strings.Join(suggestions, " or ") + "?"
	}
	return usagef("%s (see %s --help)", msg, cmd.CommandPath())
}

// interruptedError is an interruption (exit 130) whose outcome the command
// reports in its own words.
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }

// usageError marks a command-line mistake (exit 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }
