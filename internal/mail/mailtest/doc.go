// Package mailtest runs a real SMTP server on loopback for tests: it speaks
// SMTP through github.com/emersion/go-smtp, optionally with AUTH PLAIN,
// STARTTLS or implicit TLS, can reject RCPT TO or the message data on
// demand, delay or drop its answer to the data (DataHook), and parses what it
// receives (MIME, quoted-printable, base64) so tests can read the code.
package mailtest
