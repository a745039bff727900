package main

import (
	"errors"
	"strings"

	"github.com/filecast/filecast"
)

// cliWords turns the library's names of options and calls, in its error
// messages, into the flags and commands that set them here: the library
// says "Options.ChunkSize 10: must be between …", the CLI "--chunk-size 10:
// must be between …". Longer keys come first where one holds another.
var cliWords = strings.NewReplacer(
	"(Options.URL, Options.Password)", "(in the URL, --password-file or $FILECAST_PASSWORD)",
	"(Options.URL)", "(--redis, $FILECAST_REDIS or $REDIS_URL)",
	"(Options.CAFile)", "(--ca-file)",
	"(Options.CertFile, Options.KeyFile)", "(--cert-file and --key-file)",
	"set Options.AllowEviction", "pass --allow-eviction",
	"Options.ChunkSize", "--chunk-size",
	"Options.Lease", "--lease",
	"Options.Replicas", "--replicas",
	"Options.Prefix", "--prefix",
	"ReceiveOptions.Member", "--member",
	"SendOptions.MaxBytes", "--max-bytes",
	"start a receiver first (Client.Receive), or join a group (Client.Join)",
	"start a receiver first (filecast recv CHANNEL --group NAME)",
	"Client.Abort or Client.AbortStale aborts it", "filecast clean CHANNEL --stale DURATION aborts it",
	"a new Receive joins it anew and gets the files sent from then on",
	"run the receiver again to join it anew (it gets the files sent from then on)",
)

// inCLIWords returns err with its message in the CLI's words; errors.Is
// and errors.As see through it.
func inCLIWords(err error) error {
	msg := err.Error()
	// The exit code (2) says it is a usage error; the text after says what.
	said := strings.ReplaceAll(cliWords.Replace(msg), filecast.ErrUsage.Error()+": ", "")
	if fe := (*filecast.Error)(nil); errors.As(err, &fe) && fe.Channel != "" {
		said = strings.ReplaceAll(said, "filecast recv CHANNEL", "filecast recv "+fe.Channel)
	}
	if said != msg {
		return &cliWordsError{msg: said, err: err}
	}
	return err
}

type cliWordsError struct {
	msg string
	err error
}

func (e *cliWordsError) Error() string { return e.msg }
func (e *cliWordsError) Unwrap() error { return e.err }
