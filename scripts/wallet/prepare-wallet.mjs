#!/usr/bin/env node
// Plays a wallet user against a running kycgate: asks for a challenge,
// signs it with the wallet libraries (ethers for EVM, tweetnacl for
// Solana), and sends it to POST /kyc/prepare-wallet, optionally naming an
// email to link. Prints kycgate's answer.
//
//   node scripts/wallet/prepare-wallet.mjs --key "$KEY" --seed <64 hex> [--chain evm|solana]
//        [--email user@example.com] [--url http://127.0.0.1:8080]
//
// The seed is the EVM private key, or the Solana ed25519 seed. Use test
// keys only.
import { parseArgs } from 'node:util';
import { sign } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    key: { type: 'string' },
    seed: { type: 'string' },
    chain: { type: 'string', default: 'evm' },
    email: { type: 'string' },
  },
});

async function post(path, body) {
  const res = await fetch(opt.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': opt.key },
    body: JSON.stringify(body),
  });
  return res.json();
}

try {
  if (!opt.key || !opt.seed) throw new Error('--key and --seed are required');
  // The address the key signs as; the challenge is issued for it.
  const { address } = await sign(opt.chain, opt.seed, '');
  const ch = await post('/security/wallet/challenge', { wallet: address });
  if (ch.status !== 'challenge_created') {
    process.stdout.write(JSON.stringify(ch) + '\n');
    process.exit(1);
  }
  const { signature } = await sign(opt.chain, opt.seed, ch.data.message);
  const body = { wallet: ch.data.wallet, message: ch.data.message, signed_bytes: signature };
  if (opt.email) body.email = opt.email;
  const out = await post('/kyc/prepare-wallet', body);
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(out.success ? 0 : 1);
} catch (err) {
  process.stderr.write(`prepare-wallet.mjs: ${err.message}\n`);
  process.exit(1);
}
