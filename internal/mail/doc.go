// Package mail delivers one-time codes by email.
//
// Two kyc.Mailer implementations live here: SMTP, which hands each code to a
// mail server and reports success only once that server accepted the message
// data (250), and Mailbox, an in-memory development inbox with an HTTP view.
//
// Transport decisions (see also docs/api.md §12):
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
//   - Each step up to the end of the message data has a short deadline
//     (Config.Timeout). Failures there delivered nothing: transient ones
//     (network errors, timeouts, SMTP 4xx) are tried up to three times in
//     all; SMTP 5xx and configuration problems (TLS, auth) are returned at
//     once, as *DeliveryError.
//   - The server's verdict on the data (the reply to the final ".") is awaited
//     as RFC 5321 §4.5.3.2.6 asks, up to 10 minutes, but no longer than the
//     caller's context allows. A 4xx verdict is retried, a 5xx one is final.
//     When no verdict comes (timeout, lost connection, the request ending)
//     the message may have been delivered: it is never sent again, and
//     SendCode returns an *UnconfirmedError wrapping kyc.ErrMailUnconfirmed.
//     Retrying there is what used to deliver one code three times.
//
// Neither errors nor logs contain the code, and recipients appear only
// masked (see MaskAddress).
package mail
