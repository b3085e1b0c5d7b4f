package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// personCommands are `kycgate person …`: what kycgate holds about a
// person, and their erasure (docs/erasure.md).
func personCommands() []command {
	return []command{
		{path: "person show", args: "--email E | --wallet W [--tenant ID] [--json]",
			summary: "what kycgate holds about a person: enrollments, proofs, sessions (no decisions)", setup: personShow},
		{path: "person erase", args: "--email E | --wallet W [--tenant ID] [--json]",
			summary: "erase a person everywhere, or one tenant's enrollment of them", help: personEraseHelp, setup: personErase},
		{path: "person erasures", args: "[--retry] [--json]",
			summary: "Didit session deletions still pending after erasures", setup: personErasures},
	}
}

const personEraseHelp = `Deletes the person with everything kept under their id, email or wallet,
and deletes their Didit sessions at Didit. With --tenant, only that tenant's
enrollment goes; the sessions stay while another tenant still has the person
(their status there must not change), and go with the last enrollment.
A Didit deletion that fails stays queued: the command then exits 1, and the
server retries it (see "kycgate person erasures").`

// personFlags are the flags naming a person.
type personFlags struct {
	email, wallet, tenant *string
}

func newPersonFlags(fs *flag.FlagSet) personFlags {
	return personFlags{
		email:  fs.String("email", "", "the person's email"),
		wallet: fs.String("wallet", "", "the person's wallet (EVM or Solana)"),
		tenant: fs.String("tenant", "", "only this tenant's enrollment"),
	}
}

func (p personFlags) query() kyc.PersonQuery {
	return kyc.PersonQuery{Email: *p.email, Wallet: *p.wallet, TenantID: *p.tenant}
}

// personError says what a lookup or erasure refused, in the CLI's words.
func personError(cmd string, q kyc.PersonQuery, err error) error {
	var ke *kyc.Error
	switch {
	case errors.Is(err, kyc.ErrNotFound):
		who := "email " + q.Email
		if q.Email == "" {
			who = "wallet " + q.Wallet
		}
		if q.TenantID != "" {
			return fmt.Errorf("%s: nobody with %s at tenant %s", cmd, who, q.TenantID)
		}
		return fmt.Errorf("%s: nobody with %s", cmd, who)
	case errors.As(err, &ke) && ke.Code == kyc.CodeMissingParams:
		return fmt.Errorf("%s: give exactly one of --email and --wallet", cmd)
	case errors.As(err, &ke):
		return fmt.Errorf("%s: %s", cmd, ke.Message)
	}
	return err
}

func cliActor(ctx context.Context) context.Context {
	return kyc.WithActor(ctx, kyc.Actor{Kind: kyc.ActorCLI})
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func personShow(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	pf := newPersonFlags(fs)
	return func(ctx context.Context) error {
		ctx = cliActor(ctx)
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			p, err := svc.LookupPerson(ctx, pf.query())
			if err != nil {
				return personError("person show", pf.query(), err)
			}
			if *a.asJSON {
				return a.out(personJSON(p), "")
			}
			return printPerson(cio, p)
		})
	}
}

func personJSON(p kyc.PersonRecord) map[string]any {
	enrs := []map[string]any{}
	for _, e := range p.Enrollments {
		enrs = append(enrs, map[string]any{"tenant_id": e.TenantID, "email": e.Email, "wallet": e.Wallet,
			"email_verified": e.EmailVerified, "wallet_verified": e.WalletVerified, "pending_email": e.PendingEmail,
			"created_at": stamp(e.CreatedAt)})
	}
	sess := []map[string]any{}
	for _, s := range p.Sessions {
		sess = append(sess, map[string]any{"session_id": s.ID, "tenant_id": s.TenantID, "status": string(s.Status),
			"has_decision": s.HasDecision, "created_at": stamp(s.CreatedAt), "updated_at": stamp(s.UpdatedAt)})
	}
	return map[string]any{"person_id": p.PersonID, "email": p.Email, "wallet": p.Wallet, "wallet_chain": p.WalletChain,
		"created_at": stamp(p.CreatedAt), "enrollments": enrs, "sessions": sess}
}

func printPerson(cio cliIO, p kyc.PersonRecord) error {
	tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "person:\t%s\nemail:\t%s\nwallet:\t%s %s\ncreated:\t%s\n\n", p.PersonID, dash(p.Email),
		dash(p.Wallet), p.WalletChain, stamp(p.CreatedAt))
	fmt.Fprintln(tw, "TENANT\tEMAIL\tEMAIL VERIFIED\tWALLET\tPENDING EMAIL\tCREATED")
	for _, e := range p.Enrollments {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", e.TenantID, dash(e.Email), e.EmailVerified, dash(e.Wallet),
			dash(e.PendingEmail), stamp(e.CreatedAt))
	}
	fmt.Fprintln(tw, "\nSESSION\tCREATED BY\tSTATUS\tDECISION KEPT\tCREATED\tUPDATED")
	for _, s := range p.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", s.ID, s.TenantID, s.Status, s.HasDecision, stamp(s.CreatedAt), stamp(s.UpdatedAt))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func personErase(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	pf := newPersonFlags(fs)
	return func(ctx context.Context) error {
		ctx = cliActor(ctx)
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			rep, err := svc.ErasePerson(ctx, pf.query())
			if err != nil {
				return personError("person erase", pf.query(), err)
			}
			what := fmt.Sprintf("erased %d enrollment(s)", rep.Enrollments)
			if rep.PersonErased {
				what = fmt.Sprintf("erased the person: %d enrollment(s), %d session(s)", rep.Enrollments, rep.Sessions)
			}
			text := what + fmt.Sprintf("\ndeleted at Didit: %s", orNone(rep.Didit))
			if len(rep.DiditPending) > 0 {
				text += fmt.Sprintf("\npending at Didit: %s", strings.Join(rep.DiditPending, ", "))
			}
			if err := a.out(map[string]any{"person_erased": rep.PersonErased, "enrollments": rep.Enrollments,
				"sessions": rep.Sessions, "didit_deleted": nonNil(rep.Didit), "didit_pending": nonNil(rep.DiditPending),
				"didit_error": rep.DiditError}, text); err != nil {
				return err
			}
			if len(rep.DiditPending) > 0 {
				return fmt.Errorf("person erase: %d Didit session deletion(s) pending (last error: %s); "+
					"they stay queued and the server retries them (kycgate person erasures)", len(rep.DiditPending), rep.DiditError)
			}
			return nil
		})
	}
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func personErasures(fs *flag.FlagSet, cio cliIO) func(context.Context) error {
	a := newAdmin(fs, cio)
	retry := fs.Bool("retry", false, "try every pending deletion now, before listing what is left")
	return func(ctx context.Context) error {
		ctx = cliActor(ctx)
		return a.with(ctx, func(ctx context.Context, svc *kyc.Service) error {
			if *retry {
				for {
					d, f, err := svc.RetryDiditDeletions(ctx, true)
					if err != nil {
						return err
					}
					if d+f == 0 || f > 0 {
						break // nothing left to claim, or Didit still fails: list what is left
					}
				}
			}
			list, err := svc.DiditDeletions(ctx)
			if err != nil {
				return err
			}
			if *a.asJSON {
				rows := []map[string]any{}
				for _, d := range list {
					rows = append(rows, map[string]any{"session_id": d.SessionID, "queued_at": stamp(d.QueuedAt),
						"attempts": d.Attempts, "next_attempt": stamp(d.NextAt), "last_error": d.LastError})
				}
				return a.out(rows, "")
			}
			if len(list) == 0 {
				_, err := fmt.Fprintln(cio.stdout, "no Didit deletions pending")
				return err
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tQUEUED\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.SessionID, stamp(d.QueuedAt), d.Attempts, stamp(d.NextAt), d.LastError)
			}
			return tw.Flush()
		})
	}
}
