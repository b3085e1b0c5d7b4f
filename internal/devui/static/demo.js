// The onboarding demo: a partner front end in plain JavaScript. It calls
// kycgate's public API with the Demo tenant's key, exactly as documented
// in the API reference.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = "";

function log(line) {
  const el = $("log");
  el.textContent += line + "\n";
  el.scrollTop = el.scrollHeight;
}

function fail(err) {
  $("error").hidden = false;
  $("error").textContent = String(err && err.message ? err.message : err);
  log("error: " + $("error").textContent);
}

// call sends one API request and returns the envelope; a non-2xx answer
// throws with the envelope's status and message.
async function call(method, path, body, quiet) {
  const init = { method, headers: { "x-api-key": apiKey } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (!quiet) log("→ " + method + " " + path + (body ? " " + JSON.stringify(body) : ""));
  const res = await fetch(path, init);
  const env = await res.json().catch(() => ({}));
  if (!quiet || !res.ok) log("← " + res.status + " " + (env.status || "") + (env.message ? " · " + env.message : ""));
  if (!res.ok) {
    const err = new Error(method + " " + path + ": " + res.status + " " + (env.status || "") + " — " + (env.message || ""));
    err.status = env.status;
    throw err;
  }
  return env;
}

// ---- base58 (Bitcoin alphabet), as Solana addresses and signatures use it
const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
function base58(bytes) {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  const digits = []; // little-endian base-58 digits
  for (let k = zeros; k < bytes.length; k++) {
    let carry = bytes[k];
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] * 256;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) { digits.push(carry % 58); carry = Math.floor(carry / 58); }
  }
  return "1".repeat(zeros) + digits.reverse().map((d) => B58[d]).join("");
}

function hex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""); }

// ---- wallets: each has address() and sign(message) → signed_bytes
const wallets = {
  // A fresh Ed25519 key made by WebCrypto, never leaving this page: its
  // public key in base58 is a Solana address.
  test: {
    key: null,
    async address() {
      if (!this.key) {
        this.key = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
        const raw = new Uint8Array(await crypto.subtle.exportKey("raw", this.key.publicKey));
        this.addr = base58(raw);
      }
      return this.addr;
    },
    async sign(message) {
      const sig = await crypto.subtle.sign({ name: "Ed25519" }, this.key.privateKey, new TextEncoder().encode(message));
      return base58(new Uint8Array(sig));
    },
  },
  // An injected EVM wallet (MetaMask and the like): EIP-191 personal_sign.
  ethereum: {
    async address() {
      const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
      this.addr = accounts[0];
      return this.addr;
    },
    async sign(message) {
      const data = "0x" + hex(new TextEncoder().encode(message));
      return window.ethereum.request({ method: "personal_sign", params: [data, this.addr] });
    },
  },
  // An injected Solana wallet with the common connect/signMessage API.
  solana: {
    async address() {
      const res = await window.solana.connect();
      this.addr = (res && res.publicKey ? res.publicKey : window.solana.publicKey).toString();
      return this.addr;
    },
    async sign(message) {
      const res = await window.solana.signMessage(new TextEncoder().encode(message), "utf8");
      return base58(res.signature || res);
    },
  },
};

// ---- status polling: the partner reads the outcome with GET /kyc/status
const FINAL = new Set(["approved", "declined", "expired", "abandoned", "kyc_expired"]);

function showStatus(el, status) {
  el.textContent = status;
  el.dataset.status = status;
  el.className = "badge " + (status === "approved" ? "ok" : FINAL.has(status) ? "bad" : "warn");
}

async function poll(query, el, step) {
  // A real front end would rather wait for its back end, which hears the
  // webhook; polling keeps this page self-contained. The log shows the
  // first poll and each change, not every repeat.
  let last = "";
  for (;;) {
    try {
      const env = await call("GET", "/kyc/status?" + query, undefined, last !== "");
      if (env.data.status !== last) {
        if (last !== "") log("status is now " + env.data.status + " (session " + env.data.session_status + ")");
        last = env.data.status;
      }
      showStatus(el, env.data.status);
      if (FINAL.has(env.data.status)) {
        $(step).classList.add("done");
        return;
      }
    } catch (err) {
      fail(err);
      return;
    }
    await new Promise((r) => setTimeout(r, 1500));
  }
}

async function openSession(identity, linkId, boxId, statusEl, step) {
  const env = await call("POST", "/kyc/create/verify_public_kyc", identity);
  const link = $(linkId);
  link.href = env.data.session.session_url;
  $(boxId).hidden = false;
  showStatus(statusEl, env.data.approved ? "approved" : "pending");
  const q = new URLSearchParams(identity).toString();
  if (env.data.approved) $(step).classList.add("done");
  else poll(q, statusEl, step);
}

// ---- email path
$("email-start").addEventListener("click", async () => {
  const email = $("email").value.trim();
  try {
    await call("POST", "/kyc/prepare", { email });
    try {
      await call("POST", "/security/email/send-otp", { email });
    } catch (err) {
      if (err.status !== "email_already_verified") throw err;
      // Verified on an earlier visit: no code needed, go straight on.
      log("this email is verified already; opening its session");
      $("email-step-1").classList.add("done");
      $("email-step-2").classList.add("done");
      await openSession({ email }, "email-session-link", "email-session", $("email-status"), "email-step-3");
      return;
    }
    const box = $("mailbox-link"); // only this address's mail
    if (box) box.href = "/_dev/mail/?to=" + encodeURIComponent(email);
    $("email-sent").hidden = false;
    $("email-step-1").classList.add("done");
    $("email-verify").disabled = false;
    $("code").focus();
  } catch (err) { fail(err); }
});

$("email-verify").addEventListener("click", async () => {
  const email = $("email").value.trim();
  try {
    await call("POST", "/security/email/verify-otp", { email, code: $("code").value.trim() });
    $("email-step-2").classList.add("done");
    await openSession({ email }, "email-session-link", "email-session", $("email-status"), "email-step-3");
  } catch (err) { fail(err); }
});

// ---- wallet path
$("wallet-start").addEventListener("click", async () => {
  const w = wallets[$("wallet-kind").value];
  try {
    const wallet = await w.address();
    $("wallet-address").textContent = "Address: " + wallet;
    $("wallet-step-1").classList.add("done");
    const ch = await call("POST", "/security/wallet/challenge", { wallet, purpose: "kyc" });
    const signed = await w.sign(ch.data.message);
    log("signed the challenge: " + signed.slice(0, 16) + "…");
    await call("POST", "/kyc/prepare-wallet", { wallet: ch.data.wallet, message: ch.data.message, signed_bytes: signed });
    $("wallet-step-2").classList.add("done");
    await openSession({ wallet: ch.data.wallet }, "wallet-session-link", "wallet-session", $("wallet-status"), "wallet-step-3");
  } catch (err) { fail(err); }
});

// ---- start-up: detect injected wallets, fetch the demo key
function addWalletOption(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  $("wallet-kind").appendChild(o);
}

(async () => {
  if (window.ethereum) addWalletOption("ethereum", "Browser EVM wallet (personal_sign)");
  if (window.solana && window.solana.signMessage) addWalletOption("solana", "Browser Solana wallet");
  try {
    const res = await fetch("/_dev/demo/key", { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || res.status);
    apiKey = body.api_key;
    $("tenant").textContent = "Tenant “Demo” (" + body.tenant_id + "), key " + apiKey.slice(0, 10) + "… — ready.";
    $("tenant").dataset.ready = "true";
    $("email-start").disabled = false;
    $("wallet-start").disabled = false;
  } catch (err) {
    $("tenant").textContent = "No demo key: " + (err.message || err);
    fail(err);
  }
})();
