#!/usr/bin/env node
// A test wallet on the command line, through the wallet libraries
// themselves (ethers for EVM, @solana/web3.js and tweetnacl for Solana).
// Test keys only: never use them for anything real.
//
//   node sign.mjs new evm|solana
//       a fresh random key; prints shell assignments to eval:
//       CHAIN=evm  SEED=<64 hex>  WALLET=0x…
//
//   curl … /security/wallet/challenge … | node sign.mjs answer "$SEED" [email]
//       reads kycgate's challenge answer on stdin, signs data.message with
//       the key, and prints the body for POST /kyc/prepare-wallet
//
//   echo '{"chain":"evm","seed_hex":"<64 hex>","message":"..."}' | node sign.mjs
//       signs one message (the end-to-end tests use this):
//       {"address":"0x…","signature":"0x…"}
//
// EVM: the seed is the private key, the signature is ethers' signMessage
// (EIP-191, r‖s‖v with v = 27/28). Solana: Keypair.fromSeed(seed), the
// signature is base58 of nacl.sign.detached over the UTF-8 message.
import { randomBytes } from 'node:crypto';
import { sign } from './lib.mjs';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// newKey prints a fresh key and its address as shell assignments.
async function newKey(chain) {
  if (chain !== 'evm' && chain !== 'solana') throw new Error('usage: sign.mjs new evm|solana');
  const seed = randomBytes(32).toString('hex');
  const { address } = await sign(chain, seed, '');
  process.stdout.write(`CHAIN=${chain}\nSEED=${seed}\nWALLET=${address}\n`);
}

// answer turns a challenge answer into a prepare-wallet body.
async function answer(seed, email) {
  if (!seed) throw new Error('usage: … | sign.mjs answer SEED [email]');
  const env = JSON.parse(await readStdin());
  const d = env && env.data;
  if (!d || typeof d.message !== 'string') {
    throw new Error(`stdin is not a challenge answer: ${JSON.stringify(env)}`);
  }
  const { address, signature } = await sign(d.wallet_chain, seed, d.message);
  if (address.toLowerCase() !== String(d.wallet).toLowerCase()) {
    throw new Error(`the challenge is for ${d.wallet}, but SEED is the key of ${address}`);
  }
  const body = { wallet: d.wallet, message: d.message, signed_bytes: signature };
  if (email) body.email = email;
  process.stdout.write(JSON.stringify(body) + '\n');
}

async function signOne() {
  const req = JSON.parse(await readStdin());
  if (typeof req !== 'object' || req === null) throw new Error('input must be a JSON object');
  if (typeof req.message !== 'string') throw new Error('message must be a string');
  if (typeof req.seed_hex !== 'string') throw new Error('seed_hex must be a string');
  const out = await sign(req.chain, req.seed_hex, req.message);
  process.stdout.write(JSON.stringify(out) + '\n');
}

try {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'new') await newKey(args[0]);
  else if (mode === 'answer') await answer(args[0], args[1]);
  else if (mode === undefined) await signOne();
  else throw new Error(`unknown mode ${JSON.stringify(mode)}: want new, answer, or none (sign one message from stdin)`);
} catch (err) {
  process.stderr.write(`sign.mjs: ${err.message}\n`);
  process.exit(1);
}
