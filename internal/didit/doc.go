// Package didit talks to Didit's verification API (v3): creating sessions,
// reading decisions, and verifying the signed webhooks Didit sends.
package didit
