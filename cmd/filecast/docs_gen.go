//go:build docs

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The reference generator is built only with -tags docs (make docs): the
// man page writer and its Markdown parser stay out of the binary users run,
// which starts faster without them.
func init() { extraCommands = append(extraCommands, newDocs) }

// newDocs is the hidden "filecast docs" command that make docs runs: the
// command reference in docs/cli and the man pages, both from the command
// tree itself, so they say what --help says.
func newDocs() *cobra.Command {
	var mdDir, manDir string
	cmd := &cobra.Command{
		Use:    "docs --markdown DIR --man DIR",
		Short:  "Write the command reference (Markdown) and man pages",
		Hidden: true,
		Long: `Write one page per command: Markdown holding the command's --help (the
reference in docs/cli), and man pages (section 1). "make docs" runs it.`,
		Example: `  filecast docs --markdown docs/cli --man bin/man/man1`,
		Args:    maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mdDir == "" && manDir == "" {
				return usagef("docs needs --markdown DIR, --man DIR or both")
			}
			if mdDir != "" {
				if err := writeMarkdown(newRoot(), mdDir); err != nil {
					return err
				}
			}
			if manDir != "" {
				return writeMan(newRoot(), manDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mdDir, "markdown", "", "write the Markdown reference into this directory, replacing its .md files")
	cmd.Flags().StringVar(&manDir, "man", "", "write the man pages into this directory")
	return cmd
}

// writeMarkdown replaces the .md files in dir with the reference.
func writeMarkdown(root *cobra.Command, dir string) error {
	pages, err := markdownPages(root)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the reference directory: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	for _, p := range old {
		if _, keep := pages[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove the page of a command that is gone: %w", err)
			}
		}
	}
	for name, b := range pages {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write the reference: %w", err)
		}
	}
	return nil
}

// writeMan writes a man page per command into dir (filecast-recv.1). The
// page's date is $SOURCE_DATE_EPOCH's, else today's.
func writeMan(root *cobra.Command, dir string) error {
	for _, c := range documented(root) {
		c.Long = manText(c.Long)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the man page directory: %w", err)
	}
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Section: "1", Source: "filecast " + readBuildInfo().Version, Manual: "filecast manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("write the man pages: %w", err)
	}
	return nil
}

// manText prepares help text for the Markdown that man pages are made
// from: lines indented in the help (option lists, commands) stay as they
// are, in a preformatted block, instead of running into one paragraph.
func manText(long string) string {
	var b strings.Builder
	inBlock := false
	for _, l := range strings.Split(long, "\n") {
		indented := strings.HasPrefix(l, "  ")
		switch {
		case indented && !inBlock:
			b.WriteString("\n")
			inBlock = true
		case !indented && inBlock && l != "":
			b.WriteString("\n")
			inBlock = false
		}
		if inBlock {
			b.WriteString("    ")
		}
		b.WriteString(l + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
