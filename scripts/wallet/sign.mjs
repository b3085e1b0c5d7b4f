#!/usr/bin/env node
// Signs one message for end-to-end tests.
//
//   echo '{"chain":"evm","seed_hex":"<64 hex>","message":"..."}' | node scripts/wallet/sign.mjs
//   -> {"address":"0x…","signature":"0x…"}
//
// EVM: the seed is the private key, the signature is ethers' signMessage
// (EIP-191, r‖s‖v with v = 27/28). Solana: Keypair.fromSeed(seed), the
// signature is base58 of nacl.sign.detached over the UTF-8 message.
import { sign } from './lib.mjs';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

try {
  const req = JSON.parse(await readStdin());
  if (typeof req !== 'object' || req === null) throw new Error('input must be a JSON object');
  if (typeof req.message !== 'string') throw new Error('message must be a string');
  if (typeof req.seed_hex !== 'string') throw new Error('seed_hex must be a string');
  const out = await sign(req.chain, req.seed_hex, req.message);
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (err) {
  process.stderr.write(`sign.mjs: ${err.message}\n`);
  process.exit(1);
}
