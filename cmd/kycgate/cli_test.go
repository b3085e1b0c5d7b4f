package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// cliRun runs the CLI with a configuration whose database folder does not
// exist, so a command that touched the database would create it.
func cliRun(t *testing.T, args ...string) (stdout, stderr string, dataDir string, err error) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	env := map[string]string{"KYCGATE_DATABASE_URL": "sqlite:" + filepath.Join(dataDir, "kycgate.db"), "KYCGATE_ADDR": "127.0.0.1:0"}
	var out, errb bytes.Buffer
	err = run(context.Background(), args, getenvFrom(env), &out, &errb)
	return out.String(), errb.String(), dataDir, err
}

// TestCLIHelp: every command answers --help and -h with its usage and its
// flags, exit 0, and does nothing else (no database, no listener).
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, h := range []string{"--help", "-h"} {
			t.Run(c.path+" "+h, func(t *testing.T) {
				out, _, dir, err := cliRun(t, append(strings.Fields(c.path), h)...)
				if err != nil {
					t.Fatalf("exit with %v", err)
				}
				if !strings.HasPrefix(out, "usage: kycgate "+c.path) || !strings.Contains(out, c.summary) {
					t.Fatalf("help does not start with the usage and summary:\n%s", out)
				}
				fs := flag.NewFlagSet("", flag.ContinueOnError)
				c.setup(fs, cliIO{})
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "-"+f.Name) {
						t.Errorf("help does not list -%s:\n%s", f.Name, out)
					}
				})
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("help touched the data folder (%v)", err)
				}
			})
		}
	}
	t.Run("didit-sim documents its variables", func(t *testing.T) {
		out, _, _, err := cliRun(t, "didit-sim", "--help")
		for _, v := range []string{"DIDITSIM_API_KEY", "DIDITSIM_BASE_URL", "DIDITSIM_WEBHOOK_URL", "DIDITSIM_WEBHOOK_SECRET"} {
			if err != nil || !strings.Contains(out, v) {
				t.Fatalf("didit-sim --help (%v) does not name %s:\n%s", err, v, out)
			}
		}
	})
}

// TestCLIGroups: the top level and each group list their commands on
// --help (exit 0); a group alone or an unknown command is an error that
// lists them.
func TestCLIGroups(t *testing.T) {
	t.Parallel()
	all := []string{"serve", "migrate", "version", "didit-sim", "tenant create", "tenant list", "tenant show", "tenant key add",
		"tenant key list", "tenant key revoke", "tenant set-quota", "tenant set-products"}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, _, err := cliRun(t, args...)
		for _, c := range all {
			if err != nil || !strings.Contains(out, "  "+c) {
				t.Fatalf("%v: %v, output lacks %q:\n%s", args, err, c, out)
			}
		}
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
		lists   []string
	}{
		{[]string{"tenant"}, "tenant: want a command", []string{"usage: kycgate tenant <command>", "tenant create", "tenant key list", "tenant set-products"}},
		{[]string{"tenant", "--help"}, "", []string{"usage: kycgate tenant <command>", "tenant create", "tenant key list"}},
		{[]string{"tenant", "key"}, "tenant key: want a command", []string{"usage: kycgate tenant key <command>", "tenant key add", "tenant key list", "tenant key revoke"}},
		{[]string{"tenant", "key", "-h"}, "", []string{"usage: kycgate tenant key <command>", "tenant key revoke"}},
		{[]string{"tenant", "nope"}, `tenant: unknown command "nope"`, []string{"usage: kycgate tenant <command>", "tenant create"}},
		{[]string{"person", "--help"}, "", []string{"usage: kycgate person <command>", "person show", "person erase"}},
		{[]string{"nope"}, `unknown command "nope"`, []string{"usage: kycgate <command>", "serve", "tenant create"}},
	} {
		out, _, _, err := cliRun(t, tc.args...)
		text := out
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			text = err.Error()
		} else if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, c := range tc.lists {
			if !strings.Contains(text, c) {
				t.Errorf("%v: does not list %q:\n%s", tc.args, c, text)
			}
		}
	}
}

// TestCLIFlagsAreTheirOwn: a subcommand refuses another's flag, and
// arguments it does not take, before touching anything.
func TestCLIFlagsAreTheirOwn(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"tenant", "list", "--name", "x"},
		{"tenant", "key", "add", "--tenant", "t", "--key", "k"},
		{"tenant", "create", "--name", "x", "--kyc", "on"},
		{"migrate", "--json"},
		{"serve", "--tenant", "t"},
		{"tenant", "list", "extra"},
	} {
		_, _, dir, err := cliRun(t, args...)
		if err == nil || !strings.Contains(err.Error(), "usage: kycgate") {
			t.Errorf("%v: err %v, want a refusal with the usage", args, err)
		}
		if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
			t.Errorf("%v touched the data folder", args)
		}
	}
}

// TestCLIVersion: version names the Go release, and --json is one object.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out, _, _, err := cliRun(t, "version")
	if err != nil || !strings.HasPrefix(out, "kycgate ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version = %q, %v", out, err)
	}
	out, _, _, err = cliRun(t, "version", "--json")
	var v map[string]any
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v["go"] != runtime.Version() || v["version"] == "" {
		t.Fatalf("version --json = %q, %v", out, err)
	}
}

// TestVersionShort: the landing page's short form of the build version.
func TestVersionShort(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    version
		want string
	}{
		{version{Module: "v1.2.3", Commit: "abc"}, "v1.2.3"},
		{version{Module: "(devel)", Commit: "0123456789abcdef", Modified: true}, "devel 0123456789ab+dirty"},
		{version{Module: "(devel)", Commit: "abc"}, "devel abc"},
		{version{Module: "(devel)"}, "devel"},
		{version{Module: "(unknown)"}, "unknown"},
	} {
		if got := c.v.short(); got != c.want {
			t.Errorf("%+v.short() = %q, want %q", c.v, got, c.want)
		}
	}
}
