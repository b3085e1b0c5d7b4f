// Package mail delivers one-time codes by email.
//
// Two kyc.Mailer implementations live here: SMTP, which hands each code to a
// mail server and reports success only once that server answered 250 to the
// message data, and Mailbox, an in-memory development inbox with an HTTP view.
//
// Transport decisions (see also api.md §12):
//
//   - smtp:// without a port means 587, the submission port (RFC 6409).
//     kycgate submits mail to a relay or provider with STARTTLS and AUTH; port 25
//     is server-to-server relay, usually blocked on cloud hosts and not where
//     authenticated submission belongs. smtps:// defaults to 465 (RFC 8314).
//   - smtp:// upgrades with STARTTLS whenever the server offers it and falls
//     back to plain SMTP otherwise; ?starttls=required refuses the fallback.
//   - Credentials are sent with AUTH PLAIN, or LOGIN when the server offers only
//     that, and only over TLS or to a loopback host: go-mail refuses both
//     mechanisms in clear text to anything else, which is what we want.
//   - Each attempt has its own deadline (Config.Timeout). Transient failures
//     (network errors, timeouts, SMTP 4xx) are tried up to three times in all;
//     SMTP 5xx and configuration problems (TLS, auth) are returned at once.
//
// Neither errors nor logs contain the code, and recipients appear only
// masked (see MaskAddress).
package mail
