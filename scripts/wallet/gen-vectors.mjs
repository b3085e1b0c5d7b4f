#!/usr/bin/env node
// Writes internal/wallet/testdata/vectors.json: signatures made by ethers
// (EVM) and @solana/web3.js + tweetnacl + bs58 (Solana), plus negative
// vectors derived from them. Keys come from fixed seeds and both signature
// schemes are deterministic, so re-running this script reproduces the file
// byte for byte.
//
//   cd scripts/wallet && npm ci && node gen-vectors.mjs
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet, getBytes, hexlify, sha256, toUtf8Bytes, verifyMessage } from 'ethers';
import { PublicKey } from '@solana/web3.js';
import nacl from 'tweetnacl';
import bs58 from 'bs58';
import { signEVM, signSolana } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const outPath = join(here, '..', '..', 'internal', 'wallet', 'testdata', 'vectors.json');

// secp256k1 group order and ed25519 group order.
const SECP_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const ED_L = 2n ** 252n + 27742317777372353535851937790883648493n;

const KEYS = 3;
const seedFor = (chain, i) => sha256(toUtf8Bytes(`kycgate/wallet/${chain}/${i}`)).slice(2);

function challenge(wallet, chain) {
  // Same shape as the kycgate challenge (docs/api.md §5), with fixed nonce/times.
  return [
    'StarkFi KYC verification',
    `Wallet: ${wallet}`,
    `Chain: ${chain}`,
    'Purpose: kyc',
    'Nonce: 7Qm2Zr9XkLpV4bTn8sWc3HdYf6JgA1Ue',
    'Issued At: 2026-01-02T03:04:05Z',
    'Expiration Time: 2026-01-02T03:14:05Z',
  ].join('\n');
}

function long1000() {
  let s = '';
  for (let i = 0; s.length < 1000; i++) s += `line ${i}: the quick brown fox jumps over the lazy dog. `;
  return s.slice(0, 1000);
}

function messagesFor(address, chain) {
  return [
    ['ascii', 'hello kycgate'],
    ['challenge', challenge(address, chain)],
    ['empty', ''],
    ['utf8', 'José Müller ✓'],
    ['emoji', 'signed with 🔑 at café'],
    ['long1000', long1000()],
  ];
}

// alterOne changes exactly one byte of the UTF-8 message (or adds one to an
// empty message). Every message starts with an ASCII letter, so flipping the
// low bit of the first byte keeps the result valid UTF-8 for JSON.
function alterOne(message) {
  if (message === '') return 'a';
  const b = toUtf8Bytes(message);
  if (b[0] >= 0x80) throw new Error('alterOne needs an ASCII first byte');
  b[0] ^= 0x01;
  return new TextDecoder('utf-8', { fatal: true }).decode(b);
}

const hex32 = (n) => n.toString(16).padStart(64, '0');

function evmParts(sig) {
  const b = getBytes(sig);
  if (b.length !== 65) throw new Error('ethers returned a signature that is not 65 bytes');
  return { r: hexlify(b.slice(0, 32)).slice(2), s: BigInt(hexlify(b.slice(32, 64))), v: b[64] };
}
const evmSig = (r, s, v) => '0x' + r + hex32(s) + v.toString(16).padStart(2, '0');

// Solana S lives in the second half of the signature, little-endian.
function leToBig(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}
function bigToLE(n, len) {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) { out[i] = Number(n & 0xffn); n >>= 8n; }
  if (n !== 0n) throw new Error('value does not fit');
  return out;
}

async function evmVectors() {
  const out = [];
  const keys = [];
  for (let i = 0; i < KEYS; i++) {
    const seed = seedFor('evm', i);
    keys.push({ seed, address: new Wallet('0x' + seed).address });
  }
  for (let i = 0; i < KEYS; i++) {
    const { seed, address } = keys[i];
    const other = keys[(i + 1) % KEYS];
    for (const [label, message] of messagesFor(address, 'evm')) {
      const name = `evm/key${i}/${label}`;
      const { signature } = await signEVM(seed, message);
      // Cross-check with ethers' own verifier before trusting the vector.
      if (verifyMessage(message, signature) !== address) throw new Error(`${name}: ethers does not verify`);
      const { r, s, v } = evmParts(signature);
      if (v !== 27 && v !== 28) throw new Error(`${name}: unexpected v ${v}`);
      if (s > SECP_N / 2n) throw new Error(`${name}: ethers produced high-S`);
      const base = { chain: 'evm', seed_hex: seed, address, message };
      out.push({ name, ...base, signature, want: 'ok' });
      out.push({ name: `${name}/v01`, ...base, signature: evmSig(r, s, v - 27), want: 'ok' });
      out.push({ name: `${name}/no-0x`, ...base, signature: signature.slice(2), want: 'ok' });
      out.push({ name: `${name}/uppercase-hex`, ...base, signature: '0x' + signature.slice(2).toUpperCase(), want: 'ok' });
      // The high-S twin is a mathematically valid signature by the same key;
      // it is rejected only because accepting both would make signatures malleable.
      out.push({ name: `${name}/high-s`, ...base, signature: evmSig(r, SECP_N - s, v === 27 ? 28 : 27), want: 'malformed' });
      out.push({ name: `${name}/high-s-v01`, ...base, signature: evmSig(r, SECP_N - s, v === 27 ? 1 : 0), want: 'malformed' });
      out.push({ name: `${name}/flipped-v`, ...base, signature: evmSig(r, s, v === 27 ? 28 : 27), want: 'mismatch' });
      out.push({ name: `${name}/altered-message`, ...base, message: alterOne(message), signature, want: 'mismatch' });
      const { signature: otherSig } = await signEVM(other.seed, message);
      out.push({ name: `${name}/other-key`, ...base, signature: otherSig, want: 'mismatch' });
    }
  }
  return out;
}

function solanaVectors() {
  const out = [];
  const keys = [];
  for (let i = 0; i < KEYS; i++) {
    const seed = seedFor('solana', i);
    keys.push({ seed, address: signSolana(seed, '').address });
  }
  for (let i = 0; i < KEYS; i++) {
    const { seed, address } = keys[i];
    const other = keys[(i + 1) % KEYS];
    if (!PublicKey.isOnCurve(new PublicKey(address).toBytes())) throw new Error(`key${i} off curve`);
    for (const [label, message] of messagesFor(address, 'solana')) {
      const name = `solana/key${i}/${label}`;
      const { signature } = signSolana(seed, message);
      const sig = bs58.decode(signature);
      const pub = new PublicKey(address).toBytes();
      if (!nacl.sign.detached.verify(toUtf8Bytes(message), sig, pub)) throw new Error(`${name}: nacl does not verify`);
      const base = { chain: 'solana', seed_hex: seed, address, message };
      out.push({ name, ...base, signature, want: 'ok' });
      out.push({ name: `${name}/altered-message`, ...base, message: alterOne(message), signature, want: 'mismatch' });
      out.push({ name: `${name}/other-key`, ...base, signature: signSolana(other.seed, message).signature, want: 'mismatch' });
      const flippedR = Uint8Array.from(sig);
      flippedR[0] ^= 0x01;
      out.push({ name: `${name}/flipped-r`, ...base, signature: bs58.encode(flippedR), want: 'mismatch' });
      // S + L is the ed25519 analogue of high-S: some verifiers accept it,
      // which makes signatures malleable, so it is malformed here.
      const sPlusL = Uint8Array.from(sig);
      sPlusL.set(bigToLE(leToBig(sig.slice(32)) + ED_L, 32), 32);
      out.push({ name: `${name}/s-plus-l`, ...base, signature: bs58.encode(sPlusL), want: 'malformed' });
    }
  }
  return out;
}

// Edge encodings checked against web3.js PublicKey.isOnCurve (noble-curves),
// so the Go on-curve test does not only agree with itself.
function solanaPoints() {
  const cases = [];
  const at = (label, fill) => {
    const b = new Uint8Array(32);
    fill(b);
    cases.push([label, b]);
  };
  for (let i = 0; i < 16; i++) at(`y=${i}`, (b) => { b[0] = i; });
  at('y=1 with sign bit (x=0, negative zero)', (b) => { b[0] = 1; b[31] = 0x80; });
  at('y=0 with sign bit', (b) => { b[31] = 0x80; });
  at('y=p (non-canonical 0)', (b) => { b.fill(0xff); b[0] = 0xed; b[31] = 0x7f; });
  at('y=p+1 (non-canonical 1)', (b) => { b.fill(0xff); b[0] = 0xee; b[31] = 0x7f; });
  at('all 0xff', (b) => { b.fill(0xff); });
  return cases.map(([label, b]) => ({ label, address: bs58.encode(b), on_curve: PublicKey.isOnCurve(b) }));
}

function libVersion(name) {
  const pkg = JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8'));
  return pkg.version;
}

const doc = {
  comment: 'Generated by scripts/wallet/gen-vectors.mjs; do not edit. want: ok | malformed | mismatch.',
  libraries: Object.fromEntries(['ethers', '@solana/web3.js', 'tweetnacl', 'bs58'].map((n) => [n, libVersion(n)])),
  vectors: [...(await evmVectors()), ...solanaVectors()],
  solana_points: solanaPoints(),
};
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, JSON.stringify(doc, null, 2) + '\n');
process.stdout.write(`wrote ${doc.vectors.length} vectors to ${outPath}\n`);
