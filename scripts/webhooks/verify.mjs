// Reads a JSON array of received webhooks from stdin,
//   [{"secret": "whsec_…", "headers": {"webhook-id": …, …}, "body": "…"}, …]
// and verifies each with the standardwebhooks package (the Standard
// Webhooks reference implementation), printing a JSON array of
//   {"ok": true, "payload": …} or {"ok": false, "error": "…"}
// in the same order. The e2e tests use it as a signature check that
// shares no code with kycgate.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(({ secret, headers, body }) => {
  try {
    return { ok: true, payload: new Webhook(secret).verify(body, headers) };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify(out));
