package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// command is one leaf of the command tree. setup declares the command's
// own flags on fs and returns what it does once they are parsed, so every
// command accepts exactly its flags and answers --help without doing
// anything.
type command struct {
	path    string // "tenant key add"
	args    string // the synopsis after the path, e.g. "--tenant ID [--json]"
	summary string
	help    string // more text for --help, optional
	setup   func(fs *flag.FlagSet, io cliIO) func(ctx context.Context) error
}

// cliIO is what a command touches besides its flags.
type cliIO struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// commands is the whole CLI; run dispatches on it.
func commands() []command {
	cs := []command{
		{path: "serve", summary: "run the server (the default command)", help: serveHelp, setup: serveCmd},
		{path: "migrate", summary: "apply database migrations and exit", setup: migrateCmd},
		{path: "version", args: "[--json]", summary: "print the version and commit this binary was built from", setup: versionCmd},
		{path: "didit-sim", summary: "run the Didit simulator on its own", help: diditSimHelp, setup: diditSimCmd},
		{path: "healthcheck", args: "[--live] [--timeout D]", summary: "probe the local server's /readyz (or /healthz) and exit 0 if it answers 200", help: healthcheckHelp, setup: healthcheckCmd},
	}
	return append(cs, tenantCommands()...)
}

// dispatch runs the command args name, or prints help.
func dispatch(ctx context.Context, args []string, cio cliIO) error {
	cs := commands()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(cio.stdout, overview(cs, nil))
		return nil
	}
	// The longest command path that prefixes args.
	var best *command
	n := 0
	for i := range cs {
		p := strings.Fields(cs[i].path)
		if len(p) > n && len(p) <= len(args) && slices.Equal(p, args[:len(p)]) {
			best, n = &cs[i], len(p)
		}
	}
	if best == nil {
		return groupError(cs, args, cio)
	}
	return best.run(ctx, args[n:], cio)
}

func (c *command) run(ctx context.Context, args []string, cio cliIO) error {
	fs := flag.NewFlagSet(c.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	action := c.setup(fs, cio)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(cio.stdout, c.usage(fs))
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w\n\n%s", c.path, err, c.usage(fs))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q\n\n%s", c.path, fs.Arg(0), c.usage(fs))
	}
	return action(ctx)
}

// usage is the command's --help text: synopsis, summary, flags.
func (c *command) usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: kycgate %s", c.path)
	if c.args != "" {
		fmt.Fprintf(&b, " %s", c.args)
	}
	fmt.Fprintf(&b, "\n\n%s\n", c.summary)
	if c.help != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.help))
	}
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

// groupError answers a path that names no command: a group alone
// ("tenant", "tenant key") or with --help lists its commands; anything
// else is unknown.
func groupError(cs []command, args []string, cio cliIO) error {
	// The longest prefix of args that some command path starts with.
	var group []string
	for i := len(args); i > 0; i-- {
		if len(under(cs, args[:i])) > 0 {
			group = args[:i]
			break
		}
	}
	if group == nil {
		return fmt.Errorf("unknown command %q\n\n%s", args[0], overview(cs, nil))
	}
	list := overview(under(cs, group), group)
	rest := args[len(group):]
	if len(rest) > 0 && (isHelp(rest[0]) || rest[0] == "help") {
		fmt.Fprint(cio.stdout, list)
		return nil
	}
	name := strings.Join(group, " ")
	if len(rest) == 0 {
		return fmt.Errorf("%s: want a command\n\n%s", name, list)
	}
	return fmt.Errorf("%s: unknown command %q\n\n%s", name, rest[0], list)
}

// under lists the commands whose path starts with prefix.
func under(cs []command, prefix []string) []command {
	var out []command
	for _, c := range cs {
		p := strings.Fields(c.path)
		if len(p) > len(prefix) && slices.Equal(p[:len(prefix)], prefix) {
			out = append(out, c)
		}
	}
	return out
}

// overview lists commands with their synopses and summaries; group is the
// command group they are in (nil for the top level), which the usage line
// names.
func overview(cs []command, group []string) string {
	var b strings.Builder
	b.WriteString("usage: " + strings.Join(append([]string{"kycgate"}, group...), " ") + " <command> [flags]   (each command answers --help)\n\ncommands:\n")
	sorted := append([]command(nil), cs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].path < sorted[j].path })
	for _, c := range sorted {
		fmt.Fprintf(&b, "  %s", c.path)
		if c.args != "" {
			fmt.Fprintf(&b, " %s", c.args)
		}
		fmt.Fprintf(&b, "\n      %s\n", c.summary)
	}
	b.WriteString("\nConfiguration is read from KYCGATE_* environment variables (see README).\n")
	return b.String()
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" }
