// Package deploy holds the container deployment (the repository's
// Dockerfile, compose.yaml, the proxy's Caddyfile and the example env
// file); it has no code, only tests that check those files, so a change
// that breaks a promise they make fails CI.
package deploy
