package main

// The baseline: a minimal net/http server that does, for each endpoint, the
// database reads and writes (and the mail, signature and Didit work) the
// request needs, and nothing else: no API key, no rate limit, no envelope,
// no access log, no metrics. It runs on the same engine and schema as
// kycgate, so kycgate's figures divided by its figures are the share of the
// practical ceiling kycgate reaches.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/pprof"
	"net/smtp"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail"
	"github.com/kycgate/kycgate/internal/wallet"
)

type baseline struct {
	stmts      sync.Map // stmtKey → *sql.Stmt
	w, r       *sql.DB
	tenant     string
	secret     string
	hookSecret string
	mail       *smtpPool
	didit      *didit.Client
	sqlite     bool
}

func baselineMain(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dbURL := fs.String("db", "", "sqlite:PATH or postgres://…")
	tenant := fs.String("tenant", "", "tenant id")
	secret := fs.String("secret", "", "server secret (OTP hashes)")
	hookSecret := fs.String("hook-secret", "", "Didit webhook secret")
	smtpAddr := fs.String("smtp", "", "SMTP sink host:port")
	diditURL := fs.String("didit", "", "Didit (simulator) base URL")
	diditKey := fs.String("didit-key", "", "Didit API key")
	workflow := fs.String("workflow", "", "Didit workflow id")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address")
	fs.Parse(args)
	if *pprofAddr != "" {
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.ListenAndServe(*pprofAddr, pm)
	}

	b := &baseline{tenant: *tenant, secret: *secret, hookSecret: *hookSecret, mail: &smtpPool{addr: *smtpAddr, idle: make(chan *smtp.Client, 256)}}
	var err error
	if err := b.openDB(*dbURL); err != nil {
		return err
	}
	if b.didit, err = didit.NewClient(didit.ClientConfig{BaseURL: *diditURL, APIKey: *diditKey, WorkflowID: *workflow}); err != nil {
		return err
	}

	for _, q := range append(txQueries, saveSend, saveCode) {
		b.stmt(b.w, q)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("GET /kyc/status", b.status)
	mux.HandleFunc("POST /kyc/prepare", b.prepare)
	mux.HandleFunc("POST /security/email/send-otp", b.sendOTP)
	mux.HandleFunc("POST /security/email/verify-otp", b.verifyOTP)
	mux.HandleFunc("POST /security/wallet/challenge", b.challenge)
	mux.HandleFunc("POST /kyc/prepare-wallet", b.prepareWallet)
	mux.HandleFunc("POST /kyc/create/verify_public_kyc", b.create)
	mux.HandleFunc("POST /webhooks/didit", b.webhook)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openDB opens the baseline's pools with the same discipline as the store,
// so the comparison measures the code and not the database set-up.
func (b *baseline) openDB(dbURL string) error {
	var err error
	if b.sqlite = strings.HasPrefix(dbURL, "sqlite:"); b.sqlite {
		// The same discipline as the store, which SQLite needs to take
		// concurrent writes at all: one write connection whose transactions
		// begin IMMEDIATE, and a pool of read-only connections; and, like
		// the store, the write-ahead log checkpointed every 200 ms from a
		// connection of its own rather than by the writer.
		path := strings.TrimPrefix(dbURL, "sqlite:")
		pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
		if b.w, err = sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)"); err != nil {
			return err
		}
		ck, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
		if err != nil {
			return err
		}
		go func() {
			for range time.Tick(200 * time.Millisecond) {
				ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}()
		b.w.SetMaxOpenConns(1)
		b.w.SetMaxIdleConns(1)
		if b.r, err = sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)"); err != nil {
			return err
		}
		n := max(4, 2*runtime.GOMAXPROCS(0))
		b.r.SetMaxOpenConns(n)
		b.r.SetMaxIdleConns(n)
	} else {
		if b.w, err = sql.Open("pgx", dbURL); err != nil {
			return err
		}
		b.w.SetMaxOpenConns(20)
		b.w.SetMaxIdleConns(20)
		b.r = b.w
	}
	return nil
}

// txQueries run inside transactions on the write pool; they are prepared at
// start-up, because on SQLite that pool's one connection is taken by the
// transaction itself.
var txQueries = []string{
	`INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (email) DO NOTHING`,
	`INSERT INTO enrollments (id, tenant_id, person_id, email, created_at)
			SELECT $4, $1, id, $2, $3 FROM persons WHERE email = $2 ON CONFLICT (tenant_id, email) DO NOTHING`,
	`UPDATE otp_codes SET code_hash = NULL
			WHERE tenant_id = $1 AND address = $2 AND wallet = '' AND code_hash = $3`,
	`UPDATE enrollments SET email_verified = TRUE WHERE tenant_id = $1 AND email = $2`,
	`INSERT INTO persons (id, wallet, wallet_chain, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`,
	`INSERT INTO enrollments (id, tenant_id, person_id, wallet, created_at)
			SELECT $4, $1, id, $2, $3 FROM persons WHERE wallet = $2
			ON CONFLICT (tenant_id, wallet) DO NOTHING`,
	`INSERT INTO webhook_events (event_key, session_id, received_at) VALUES ($1, $2, $3)
			ON CONFLICT (event_key) DO NOTHING`,
	`UPDATE kyc_sessions SET status = $2, event_at = $3, updated_at = $4, version = version + 1
			WHERE id = $1 AND event_at <= $3`,
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// stmt returns db's prepared statement for q: the ceiling uses prepared
// statements, as kycgate's store does.
func (b *baseline) stmt(db *sql.DB, q string) *sql.Stmt {
	k := stmtKey{db, q}
	if v, ok := b.stmts.Load(k); ok {
		return v.(*sql.Stmt)
	}
	st, err := db.Prepare(q)
	if err != nil {
		panic(fmt.Sprintf("prepare %q: %v", q, err))
	}
	if v, loaded := b.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	return st
}

func (b *baseline) queryRow(ctx context.Context, db *sql.DB, q string, args ...any) *sql.Row {
	return b.stmt(db, q).QueryRowContext(ctx, args...)
}

func (b *baseline) exec(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	return b.stmt(db, q).ExecContext(ctx, args...)
}

func (b *baseline) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	return tx.StmtContext(ctx, b.stmt(b.w, q)).ExecContext(ctx, args...)
}

func reply(w http.ResponseWriter, code int, v any) {
	var body []byte
	if v != nil {
		body, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(body)
}

func fail(w http.ResponseWriter, code int, err error) {
	http.Error(w, err.Error(), code)
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// status: one SELECT by key.
func (b *baseline) status(w http.ResponseWriter, r *http.Request) {
	var s struct {
		ID          string          `json:"session_id"`
		Status      string          `json:"session_status"`
		URL         string          `json:"session_url"`
		IPInfo      json.RawMessage `json:"ip_info"`
		Blocklisted bool            `json:"is_blocklisted"`
	}
	var ip string
	err := b.queryRow(r.Context(), b.r, `SELECT s.id, s.status, s.url, s.ip_info, s.blocklisted
		FROM enrollments e JOIN kyc_sessions s ON s.person_id = e.person_id
		WHERE e.tenant_id = $1 AND e.email = $2 AND (e.email_verified OR e.wallet IS NOT NULL)
		ORDER BY s.created_at DESC, s.id DESC LIMIT 1`, b.tenant, normEmail(r.URL.Query().Get("email"))).
		Scan(&s.ID, &s.Status, &s.URL, &ip, &s.Blocklisted)
	if errors.Is(err, sql.ErrNoRows) {
		reply(w, 404, nil)
		return
	}
	if err != nil {
		fail(w, 500, err)
		return
	}
	s.IPInfo = json.RawMessage(ip)
	reply(w, 200, s)
}

func randomID(prefix string) string { return prefix + strings.ToLower(rand.Text()) }

// prepare: insert the person and the enrollment, in one transaction.
func (b *baseline) prepare(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email string }
	if err := readJSON(r, &in); err != nil || in.Email == "" {
		fail(w, 400, errors.New("email"))
		return
	}
	email, now := normEmail(in.Email), time.Now().UnixMilli()
	created := false
	err := inTx(r.Context(), b.w, func(tx *sql.Tx) error {
		if _, err := b.txExec(r.Context(), tx, txQueries[0], randomID("ps_"), email, now); err != nil {
			return err
		}
		res, err := b.txExec(r.Context(), tx, txQueries[1], b.tenant, email, now, randomID("en_"))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	})
	if err != nil {
		fail(w, 500, err)
		return
	}
	if created {
		reply(w, 201, nil)
		return
	}
	reply(w, 200, nil)
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (b *baseline) otpHash(email, code string) string {
	return otpHash(b.secret, b.tenant, email, code)
}

func sixDigits() string {
	for {
		var x [4]byte
		rand.Read(x[:])
		if v := binary.BigEndian.Uint32(x[:]); v < 4294000000 {
			return fmt.Sprintf("%06d", v%1000000)
		}
	}
}

// sendOTP: find the enrollment, store the code (one conditional upsert:
// gap and hourly window), mail it.
func (b *baseline) sendOTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email string }
	if err := readJSON(r, &in); err != nil || in.Email == "" {
		fail(w, 400, errors.New("email"))
		return
	}
	email := normEmail(in.Email)
	var pid string
	err := b.queryRow(r.Context(), b.r, `SELECT person_id FROM enrollments
		WHERE tenant_id = $1 AND email = $2 AND NOT email_verified`, b.tenant, email).Scan(&pid)
	if err != nil {
		fail(w, 404, err)
		return
	}
	code, now := sixDigits(), time.Now().UnixMilli()
	err = b.saveCode(r.Context(), email, b.otpHash(email, code), now)
	if errors.Is(err, sql.ErrNoRows) {
		reply(w, 429, nil)
		return
	}
	if err != nil {
		fail(w, 500, err)
		return
	}
	if err := b.mail.send(email, code); err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 201, nil)
}

// The send limits (60 s apart, 5 an hour) are per address, over every code
// mailed to it; each code has a slot of its own (the address's, or a
// wallet link's).
const (
	saveSend = `INSERT INTO otp_sends (tenant_id, address, sent1) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, address) DO UPDATE SET
			sent1 = excluded.sent1, sent2 = otp_sends.sent1, sent3 = otp_sends.sent2, sent4 = otp_sends.sent3, sent5 = otp_sends.sent4
		WHERE (otp_sends.sent1 IS NULL OR otp_sends.sent1 <= $4) AND (otp_sends.sent5 IS NULL OR otp_sends.sent5 <= $5)
		RETURNING sent1`
	saveCode = `INSERT INTO otp_codes (tenant_id, address, wallet, code_hash, expires_at, attempts)
		VALUES ($1, $2, '', $3, $4, 0)
		ON CONFLICT (tenant_id, address, wallet) DO UPDATE SET
			code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0`
)

// saveCode takes a place in the address's send limits and stores the code,
// both or neither (sql.ErrNoRows: refused): one statement on PostgreSQL,
// one transaction on SQLite.
func (b *baseline) saveCode(ctx context.Context, email, hash string, now int64) error {
	var got int64
	if !b.sqlite {
		return b.queryRow(ctx, b.w, `WITH s AS (`+saveSend+`), c AS (`+
			strings.Replace(saveCode, "VALUES ($1, $2, '', $3, $4, 0)", "SELECT $1::text, $2::text, '', $6::text, $7::bigint, 0 FROM s", 1)+`)
			SELECT sent1 FROM s`, b.tenant, email, now, now-60_000, now-3_600_000, hash, now+600_000).Scan(&got)
	}
	return inTx(ctx, b.w, func(tx *sql.Tx) error {
		if err := tx.StmtContext(ctx, b.stmt(b.w, saveSend)).QueryRowContext(ctx, b.tenant, email, now, now-60_000, now-3_600_000).Scan(&got); err != nil {
			return err
		}
		_, err := b.txExec(ctx, tx, saveCode, b.tenant, email, hash, now+600_000)
		return err
	})
}

// verifyOTP: count the attempt and read the code in one UPDATE … RETURNING,
// compare, then consume it and mark the email verified in one transaction.
func (b *baseline) verifyOTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Code string }
	if err := readJSON(r, &in); err != nil || in.Email == "" || in.Code == "" {
		fail(w, 400, errors.New("email and code"))
		return
	}
	var stored string
	email := normEmail(in.Email)
	err := b.queryRow(r.Context(), b.w, `UPDATE otp_codes SET attempts = attempts + 1
		WHERE tenant_id = $1 AND address = $2 AND wallet = '' AND code_hash IS NOT NULL AND attempts < 5 AND expires_at > $3
		RETURNING code_hash`, b.tenant, email, time.Now().UnixMilli()).Scan(&stored)
	if err != nil {
		fail(w, 400, err)
		return
	}
	if !hmac.Equal([]byte(b.otpHash(email, strings.TrimSpace(in.Code))), []byte(stored)) {
		reply(w, 400, nil)
		return
	}
	err = inTx(r.Context(), b.w, func(tx *sql.Tx) error {
		if _, err := b.txExec(r.Context(), tx, txQueries[2], b.tenant, email, stored); err != nil {
			return err
		}
		_, err := b.txExec(r.Context(), tx, txQueries[3], b.tenant, email)
		return err
	})
	if err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 200, nil)
}

// challenge: parse the wallet, store the challenge (one INSERT).
func (b *baseline) challenge(w http.ResponseWriter, r *http.Request) {
	var in struct{ Wallet string }
	if err := readJSON(r, &in); err != nil {
		fail(w, 400, err)
		return
	}
	addr, err := wallet.ParseAddress(strings.TrimSpace(in.Wallet))
	if err != nil {
		fail(w, 400, err)
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(10 * time.Minute)
	nc := nonce()
	msg := "StarkFi KYC verification\nWallet: " + addr.String + "\nChain: " + string(addr.Chain) + "\nPurpose: kyc\nNonce: " + nc +
		"\nIssued At: " + now.Format(time.RFC3339) + "\nExpiration Time: " + exp.Format(time.RFC3339)
	if _, err := b.exec(r.Context(), b.w, `INSERT INTO challenges (nonce, tenant_id, wallet, chain, message, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, nc, b.tenant, addr.String, string(addr.Chain), msg, exp.UnixMilli()); err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 201, map[string]string{"message": msg, "wallet": addr.String, "wallet_chain": string(addr.Chain)})
}

// prepareWallet: read the challenge, verify the signature, consume the
// challenge, insert person and enrollment.
func (b *baseline) prepareWallet(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Wallet, Message string
		SignedBytes     string `json:"signed_bytes"`
	}
	if err := readJSON(r, &in); err != nil {
		fail(w, 400, err)
		return
	}
	addr, err := wallet.ParseAddress(strings.TrimSpace(in.Wallet))
	if err != nil {
		fail(w, 400, err)
		return
	}
	var nc string
	for line := range strings.SplitSeq(in.Message, "\n") {
		if n, ok := strings.CutPrefix(line, "Nonce: "); ok {
			nc = n
		}
	}
	var tenant, wal, msg string
	var exp int64
	var used sql.NullInt64
	if err := b.queryRow(r.Context(), b.r, `SELECT tenant_id, wallet, message, expires_at, used_at FROM challenges WHERE nonce = $1`, nc).
		Scan(&tenant, &wal, &msg, &exp, &used); err != nil {
		fail(w, 400, err)
		return
	}
	now := time.Now()
	if tenant != b.tenant || wal != addr.String || msg != in.Message || used.Valid || now.UnixMilli() >= exp {
		fail(w, 400, errors.New("challenge"))
		return
	}
	if err := wallet.VerifySignature(addr, []byte(in.Message), strings.TrimSpace(in.SignedBytes)); err != nil {
		fail(w, 400, err)
		return
	}
	res, err := b.exec(r.Context(), b.w, `UPDATE challenges SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL`, nc, now.UnixMilli())
	if err != nil {
		fail(w, 500, err)
		return
	}
	if n, _ := res.RowsAffected(); n != 1 {
		fail(w, 400, errors.New("challenge used"))
		return
	}
	err = inTx(r.Context(), b.w, func(tx *sql.Tx) error {
		if _, err := b.txExec(r.Context(), tx, txQueries[4], randomID("ps_"), addr.String, string(addr.Chain), now.UnixMilli()); err != nil {
			return err
		}
		_, err := b.txExec(r.Context(), tx, txQueries[5], b.tenant, addr.String, now.UnixMilli(), randomID("en_"))
		return err
	})
	if err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 201, map[string]any{"wallet_verified": true})
}

// create: find the verified enrollment, create the Didit session, store it.
func (b *baseline) create(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email string }
	if err := readJSON(r, &in); err != nil || in.Email == "" {
		fail(w, 400, errors.New("email"))
		return
	}
	var pid string
	if err := b.queryRow(r.Context(), b.r, `SELECT person_id FROM enrollments
		WHERE tenant_id = $1 AND email = $2 AND (email_verified OR wallet IS NOT NULL)`, b.tenant, normEmail(in.Email)).Scan(&pid); err != nil {
		fail(w, 403, err)
		return
	}
	ps, err := b.didit.CreateSession(r.Context(), kyc.CreateSessionRequest{VendorData: pid, Metadata: map[string]string{"tenant_id": b.tenant}})
	if err != nil {
		fail(w, 500, err)
		return
	}
	now := time.Now().UnixMilli()
	if _, err := b.exec(r.Context(), b.w, `INSERT INTO kyc_sessions (id, person_id, tenant_id, url, status, ip_info, blocklisted,
		decision, event_at, created_at, updated_at, checked_at, watch, version)
		VALUES ($1, $2, $3, $4, $5, '[]', FALSE, NULL, 0, $6, $6, $6, TRUE, 0)`, ps.ID, pid, b.tenant, ps.URL, ps.Status, now); err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 201, map[string]string{"session_id": ps.ID, "session_url": ps.URL})
}

// webhook: verify the signature, parse, record the event and update the
// session in one transaction.
func (b *baseline) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(w, 400, err)
		return
	}
	now := time.Now()
	if err := didit.VerifyWebhook(b.hookSecret, r.Header, body, now); err != nil {
		fail(w, 401, err)
		return
	}
	ev, err := didit.ParseWebhook(body)
	if err != nil {
		fail(w, 400, err)
		return
	}
	err = inTx(r.Context(), b.w, func(tx *sql.Tx) error {
		res, err := b.txExec(r.Context(), tx, txQueries[6], ev.EventID, ev.SessionID, now.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		_, err = b.txExec(r.Context(), tx, txQueries[7], ev.SessionID, ev.Status, ev.At.UnixMilli(), now.UnixMilli())
		return err
	})
	if err != nil {
		fail(w, 500, err)
		return
	}
	reply(w, 200, nil)
}

// codeMail is the same mail kycgate sends (kycgate's templates, rendered
// by its mail package; text and HTML alternatives, quoted-printable),
// written by hand: the ceiling sends the same bytes' worth of mail.
func codeMail(to, code string) (string, error) {
	m, err := mail.Render(mail.Config{}, kyc.CodeMail{To: to, Code: code})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	boundary := rand.Text()
	b.WriteString("From: kycgate <no-reply@localhost>\r\nTo: <" + m.To + ">\r\nSubject: " + mime.QEncoding.Encode("utf-8", m.Subject) +
		"\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + rand.Text() + "@localhost>\r\n" +
		"Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=" + boundary + "\r\n\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		b.WriteString("--" + boundary + "\r\nContent-Type: " + part.ctype + "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		qp := quotedprintable.NewWriter(&b)
		qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n")))
		qp.Close()
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String(), nil
}

// smtpPool keeps SMTP connections open between messages.
type smtpPool struct {
	addr string
	idle chan *smtp.Client
}

func (p *smtpPool) send(to, code string) error {
	if p.idle == nil {
		return errors.New("no SMTP configured")
	}
	var c *smtp.Client
	var err error
	select {
	case c = <-p.idle:
	default:
		if c, err = smtp.Dial(p.addr); err != nil {
			return err
		}
		if err := c.Hello("localhost"); err != nil {
			c.Close()
			return err
		}
	}
	msg, err := codeMail(to, code)
	if err != nil {
		c.Quit()
		return err
	}
	err = c.Mail("no-reply@localhost")
	if err == nil {
		err = c.Rcpt(to)
	}
	if err == nil {
		var wc io.WriteCloser
		if wc, err = c.Data(); err == nil {
			if _, err = io.WriteString(wc, msg); err == nil {
				err = wc.Close()
			}
		}
	}
	if err != nil {
		c.Close()
		return err
	}
	select {
	case p.idle <- c:
	default:
		c.Quit()
	}
	return nil
}
