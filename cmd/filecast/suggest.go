package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// suggestions are the words people type for a command, which "did you
// mean" then offers it for ("filecast receive" → recv).
var suggestions = map[string][]string{
	"recv":   {"receive", "recieve", "get", "pull"},
	"send":   {"put", "publish", "push"},
	"status": {"stat", "info", "ls"},
	"clean":  {"rm", "delete"},
}

func suggestFor(root *cobra.Command) {
	for _, c := range root.Commands() {
		c.SuggestFor = append(c.SuggestFor, suggestions[c.Name()]...)
	}
}

// flagError makes a flag cobra cannot parse a usage error (exit 2) that
// points to the command's help.
func flagError(cmd *cobra.Command, err error) error {
	return usagef("%v (see %s --help)", err, cmd.CommandPath())
}

// tooManyArgs says that cmd got got arguments where it takes at most n,
// naming them from its Use line: "status takes at most one CHANNEL, got 2
// arguments", "version takes no arguments".
func tooManyArgs(cmd *cobra.Command, n, got int) string {
	if n == 0 {
		return fmt.Sprintf("%s takes no arguments, got %d", cmd.Name(), got)
	}
	var names []string
	for _, w := range strings.Fields(cmd.Use)[1:] {
		w = strings.Trim(w, "[]().")
		if w != "" && !strings.HasPrefix(w, "-") && strings.ToUpper(w) == w {
			names = append(names, w)
		}
	}
	what := fmt.Sprintf("%d %s", n, plural(n, "argument", "arguments"))
	if len(names) == n {
		what = strings.Join(names, " and ")
		if n == 1 {
			what = "one " + what
		}
	}
	return fmt.Sprintf("%s takes at most %s, got %d %s", cmd.Name(), what, got, plural(got, "argument", "arguments"))
}
