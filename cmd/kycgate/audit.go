package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// auditCommands read and check the audit log (docs/audit.md).
func auditCommands() []command {
	return []command{
		{path: "audit list", args: "[--tenant ID] [--action A] [--actor A] [--email E | --wallet W | --subject S] [--since T] [--until T] [--before ID] [--limit N] [--json]",
			summary: "list audit entries, newest first", help: auditListHelp, setup: auditList},
		{path: "audit verify", args: "[--tenant ID] [--json]",
			summary: "check the audit log's hash chains; exit 1 naming the first broken entry", help: auditVerifyHelp, setup: auditVerify},
	}
}

const auditListHelp = `
Subjects are keyed hashes of an email or wallet, or "kind:id" for something
kycgate named (key:…, endpoint:…, session:…, event:…). --since and --until
take an RFC 3339 time or an age (90m, 36h, 7d). Page on with --before set to
the smallest id shown.`

const auditVerifyHelp = `
Seals the entries still waiting, then walks every tenant's chain (or one)
and checks each entry's hash and its link to the one before. It prints each
chain's head: keep those elsewhere; a chain rewritten whole from its start
is only caught by comparing heads with an earlier record.`

func auditList(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	var f kyc.AuditFilter
	fs.StringVar(&f.TenantID, "tenant", "", "only this tenant's entries")
	fs.StringVar(&f.Action, "action", "", "only this action (e.g. email.verify)")
	fs.StringVar(&f.Actor, "actor", "", "only this actor (api_key:KEY_ID) or kind (api_key, admin, cli, didit, system)")
	fs.StringVar(&f.Subject, "subject", "", "only this subject (as listed, or key:ID, session:ID, …)")
	email := fs.String("email", "", "only entries about the person with this email")
	wallet := fs.String("wallet", "", "only entries about the person with this wallet")
	since := fs.String("since", "", "entries at or after this time or age")
	until := fs.String("until", "", "entries before this time or age")
	fs.Int64Var(&f.BeforeID, "before", 0, "entries with an id below this (paging)")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many (up to 1000)")
	return func(ctx context.Context) error {
		now := time.Now()
		var err error
		if f.Since, err = parseWhen(*since, now); err != nil {
			return fmt.Errorf("audit list: --since: %w", err)
		}
		if f.Until, err = parseWhen(*until, now); err != nil {
			return fmt.Errorf("audit list: --until: %w", err)
		}
		if f.Limit < 1 || f.Limit > 1000 {
			return errors.New("audit list: --limit must be between 1 and 1000")
		}
		if given := len(slices.DeleteFunc([]string{*email, *wallet, f.Subject}, func(v string) bool { return v == "" })); given > 1 {
			return errors.New("audit list: give at most one of --email, --wallet and --subject")
		}
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if *email != "" || *wallet != "" {
				if f.Subject, err = svc.AuditSubjectOf(*email, *wallet); err != nil {
					return fmt.Errorf("audit list: %w", err)
				}
			}
			entries, err := svc.AuditLog(ctx, f)
			if err != nil {
				return err
			}
			if *a.asJSON {
				rows := make([]auditJSON, len(entries))
				for i, e := range entries {
					rows[i] = auditRow(e)
				}
				return json.NewEncoder(cio.stdout).Encode(rows)
			}
			return printAudit(cio.stdout, entries)
		})
	}
}

// parseWhen reads a time as RFC 3339, or as an age before now ("36h",
// "7d"); "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time or an age like 36h or 7d, got %q", s)
}

// auditJSON is an entry as `audit list --json` prints it.
type auditJSON struct {
	ID        int64  `json:"id"`
	TenantID  string `json:"tenant_id"`
	At        string `json:"at"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Subject   string `json:"subject"`
	Result    string `json:"result"`
	RequestID string `json:"request_id"`
	Seq       int64  `json:"seq,omitempty"`
	PrevHash  string `json:"prev_hash,omitempty"`
	Hash      string `json:"hash,omitempty"`
}

func auditRow(e kyc.AuditEntry) auditJSON {
	return auditJSON{ID: e.ID, TenantID: e.TenantID, At: e.At.Format(time.RFC3339Nano), Actor: e.Actor,
		Action: e.Action, Subject: e.Subject, Result: e.Result, RequestID: e.RequestID,
		Seq: e.Seq, PrevHash: e.PrevHash, Hash: e.Hash}
}

func printAudit(w io.Writer, entries []kyc.AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tTENANT\tACTOR\tACTION\tSUBJECT\tRESULT\tREQUEST\tSEQ")
	for _, e := range entries {
		seq := "-" // not sealed yet
		if e.Seq > 0 {
			seq = strconv.FormatInt(e.Seq, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), orDash(e.TenantID),
			e.Actor, e.Action, orDash(shortHash(e.Subject)), e.Result, orDash(e.RequestID), seq)
	}
	return tw.Flush()
}

// shortHash shows a subject's keyed hash by its first 16 hex digits (what
// --subject takes is the whole of it, as --json prints).
func shortHash(s string) string {
	if len(s) == 64 && !strings.Contains(s, ":") {
		return s[:16] + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func auditVerify(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	tenantID := fs.String("tenant", "", "check only this tenant's chain")
	return func(ctx context.Context) error {
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			v, err := svc.VerifyAudit(ctx, *tenantID)
			if err != nil {
				return err
			}
			if err := printVerification(cio.stdout, v, *a.asJSON); err != nil {
				return err
			}
			if b := v.Broken; b != nil {
				return fmt.Errorf("audit verify: chain broken at entry %d (tenant %s, seq %d): %s",
					b.ID, tenantName(b.TenantID), b.Seq, v.Reason)
			}
			return nil
		})
	}
}

func tenantName(id string) string {
	if id == "" {
		return `"" (operator entries)`
	}
	return id
}

func printVerification(w io.Writer, v kyc.AuditVerification, asJSON bool) error {
	if asJSON {
		out := map[string]any{"ok": v.Broken == nil, "chains": v.Tenants, "entries": v.Entries,
			"unsealed": v.Unsealed, "heads": v.Heads}
		if b := v.Broken; b != nil {
			out["broken"] = map[string]any{"id": b.ID, "tenant_id": b.TenantID, "seq": b.Seq, "reason": v.Reason}
		}
		return json.NewEncoder(w).Encode(out)
	}
	fmt.Fprintf(w, "chains: %d, entries checked: %d, unsealed: %d\n", v.Tenants, v.Entries, v.Unsealed)
	if b := v.Broken; b != nil {
		fmt.Fprintf(w, "BROKEN at entry %d (tenant %s, seq %d): %s\n", b.ID, tenantName(b.TenantID), b.Seq, v.Reason)
	} else {
		fmt.Fprintln(w, "every chain holds")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tHEAD")
	for _, t := range slices.Sorted(maps.Keys(v.Heads)) {
		fmt.Fprintf(tw, "%s\t%s\n", orDash(t), v.Heads[t])
	}
	return tw.Flush()
}
