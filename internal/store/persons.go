package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func personBy(ctx context.Context, q querier, col, val string) (kyc.Person, error) {
	var p kyc.Person
	var email, wallet, chain sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, email, wallet, wallet_chain FROM persons WHERE `+col+` = $1`, val).
		Scan(&p.ID, &email, &wallet, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return p, kyc.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("store: person by %s: %w", col, err)
	}
	p.Email, p.Wallet, p.WalletChain = email.String, wallet.String, chain.String
	return p, nil
}

func enrollment(ctx context.Context, q querier, tenantID, personID string) (kyc.Enrollment, error) {
	e := kyc.Enrollment{TenantID: tenantID, PersonID: personID}
	err := q.QueryRowContext(ctx, `SELECT email_verified, wallet_verified FROM enrollments
		WHERE tenant_id = $1 AND person_id = $2`, tenantID, personID).Scan(&e.EmailVerified, &e.WalletVerified)
	if errors.Is(err, sql.ErrNoRows) {
		return e, kyc.ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("store: enrollment: %w", err)
	}
	return e, nil
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (db *DB) PrepareEmail(ctx context.Context, tenantID, personID, email string, now time.Time) (p kyc.Person, e kyc.Enrollment, created bool, err error) {
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (email) DO NOTHING`, personID, email, ms(now)); err != nil {
			return fmt.Errorf("store: insert person: %w", err)
		}
		if p, err = personBy(ctx, tx, "email", email); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO enrollments (tenant_id, person_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, person_id) DO NOTHING`, tenantID, p.ID, ms(now))
		if err != nil {
			return fmt.Errorf("store: enroll: %w", err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		e, err = enrollment(ctx, tx, tenantID, p.ID)
		return err
	})
	return p, e, created, err
}

func (db *DB) FindEnrollment(ctx context.Context, tenantID, email, wallet string) (kyc.Person, kyc.Enrollment, error) {
	col, val := "p.email", email
	if email == "" {
		col, val = "p.wallet", wallet
	}
	var p kyc.Person
	var pe, pw, pc sql.NullString
	e := kyc.Enrollment{TenantID: tenantID}
	err := db.r.QueryRowContext(ctx, `SELECT p.id, p.email, p.wallet, p.wallet_chain, e.email_verified, e.wallet_verified
		FROM persons p JOIN enrollments e ON e.person_id = p.id AND e.tenant_id = $1
		WHERE `+col+` = $2`, tenantID, val).Scan(&p.ID, &pe, &pw, &pc, &e.EmailVerified, &e.WalletVerified)
	if errors.Is(err, sql.ErrNoRows) {
		return p, e, kyc.ErrNotFound
	}
	if err != nil {
		return p, e, fmt.Errorf("store: find enrollment: %w", err)
	}
	p.Email, p.Wallet, p.WalletChain = pe.String, pw.String, pc.String
	e.PersonID = p.ID
	return p, e, nil
}

// PrepareWallet applies api.md §6's linking rules in one transaction.
func (db *DB) PrepareWallet(ctx context.Context, tenantID, personID string, w kyc.WalletProof, email string, now time.Time) (p kyc.Person, e kyc.Enrollment, created bool, err error) {
	err = db.tx(ctx, func(tx *sql.Tx) error {
		pw, err := personBy(ctx, tx, "wallet", w.Wallet)
		if err != nil && !errors.Is(err, kyc.ErrNotFound) {
			return err
		}
		haveWallet := err == nil
		var pe kyc.Person
		haveEmail := false
		if email != "" {
			pe, err = personBy(ctx, tx, "email", email)
			if err != nil && !errors.Is(err, kyc.ErrNotFound) {
				return err
			}
			haveEmail = err == nil
		}
		switch {
		case haveWallet && email == "":
			p = pw
		case haveWallet && pw.Email == email:
			p = pw
		case haveWallet:
			// The wallet's person already has another email, or the email
			// is another person's: linking would merge two people.
			if pw.Email != "" || haveEmail {
				return kyc.ErrConflict
			}
			if _, err := tx.ExecContext(ctx, `UPDATE persons SET email = $2 WHERE id = $1`, pw.ID, email); err != nil {
				if isUnique(err) {
					return kyc.ErrConflict
				}
				return fmt.Errorf("store: link email: %w", err)
			}
			p = pw
			p.Email = email
		case haveEmail:
			if pe.Wallet != "" {
				return kyc.ErrConflict
			}
			if _, err := tx.ExecContext(ctx, `UPDATE persons SET wallet = $2, wallet_chain = $3 WHERE id = $1`,
				pe.ID, w.Wallet, w.Chain); err != nil {
				if isUnique(err) {
					return kyc.ErrConflict
				}
				return fmt.Errorf("store: link wallet: %w", err)
			}
			p = pe
			p.Wallet, p.WalletChain = w.Wallet, w.Chain
		default:
			if _, err := tx.ExecContext(ctx, `INSERT INTO persons (id, email, wallet, wallet_chain, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, personID, nullStr(email), w.Wallet, w.Chain, ms(now)); err != nil {
				return fmt.Errorf("store: insert person: %w", err)
			}
			if p, err = personBy(ctx, tx, "wallet", w.Wallet); err != nil {
				if errors.Is(err, kyc.ErrNotFound) { // lost a race on the email
					return kyc.ErrConflict
				}
				return err
			}
			if p.Email != email && email != "" {
				return kyc.ErrConflict
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO enrollments (tenant_id, person_id, wallet_verified, created_at)
			VALUES ($1, $2, TRUE, $3) ON CONFLICT (tenant_id, person_id) DO NOTHING`, tenantID, p.ID, ms(now))
		if err != nil {
			return fmt.Errorf("store: enroll: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			created = true
		} else if _, err := tx.ExecContext(ctx, `UPDATE enrollments SET wallet_verified = TRUE
			WHERE tenant_id = $1 AND person_id = $2`, tenantID, p.ID); err != nil {
			return fmt.Errorf("store: verify wallet: %w", err)
		}
		e, err = enrollment(ctx, tx, tenantID, p.ID)
		return err
	})
	return p, e, created, err
}
