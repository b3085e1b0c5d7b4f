// Shared signing helpers for gen-vectors.mjs and sign.mjs. Everything here
// goes through the wallet libraries themselves (ethers, @solana/web3.js,
// tweetnacl, bs58) so the Go verifier is checked against code it does not
// share anything with.
import { Wallet, getBytes, hexlify, toUtf8Bytes } from 'ethers';
import { Keypair } from '@solana/web3.js';
import nacl from 'tweetnacl';
import bs58 from 'bs58';

export function seedBytes(seedHex) {
  const hex = seedHex.startsWith('0x') ? seedHex.slice(2) : seedHex;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error('seed_hex must be exactly 32 bytes of hex');
  }
  return getBytes('0x' + hex);
}

// EVM: the seed is the secp256k1 private key; signMessage is EIP-191
// personal_sign and is deterministic (RFC 6979), so vectors are reproducible.
export async function signEVM(seedHex, message) {
  const wallet = new Wallet(hexlify(seedBytes(seedHex)));
  return { address: wallet.address, signature: await wallet.signMessage(message) };
}

// Solana: the seed is the ed25519 seed (what Keypair.fromSeed takes); the
// signature is over the UTF-8 bytes of the message, as wallets sign it.
export function signSolana(seedHex, message) {
  const kp = Keypair.fromSeed(seedBytes(seedHex));
  const sig = nacl.sign.detached(toUtf8Bytes(message), kp.secretKey);
  return { address: kp.publicKey.toBase58(), signature: bs58.encode(sig) };
}

export async function sign(chain, seedHex, message) {
  switch (chain) {
    case 'evm':
      return signEVM(seedHex, message);
    case 'solana':
      return signSolana(seedHex, message);
    default:
      throw new Error(`unknown chain ${JSON.stringify(chain)}`);
  }
}
