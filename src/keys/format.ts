// SPEC §4.2: `nnz_<id>_<secret>`; id is 12 base62 characters (public, indexed), secret 32 random bytes
// in base62. The fixed prefix lets secret scanners recognise a leaked key.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const KEY_PATTERN = /^nnz_([0-9A-Za-z]{12})_([0-9A-Za-z]{20,64})$/

/** Unbiased random base62 string (rejection sampling over random bytes). */
function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62]
      if (out.length === length) break
    }
  }
  return out
}

/** 32 random bytes as base62 (43 characters). */
function secretBase62(): string {
  let n = BigInt(`0x${randomBytes(32).toString('hex')}`)
  let out = ''
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)] + out
    n /= 62n
  }
  return out.padStart(43, '0')
}

export interface ParsedKey {
  readonly id: string
  readonly secret: string
}

export function newKeyId(): string {
  return randomBase62(12)
}

export function newKey(id = newKeyId()): ParsedKey & { readonly token: string } {
  const secret = secretBase62()
  return { id, secret, token: `nnz_${id}_${secret}` }
}

export function parseKey(token: string): ParsedKey | undefined {
  const m = KEY_PATTERN.exec(token)
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined
}

// On Bun its native SHA-256 hashes into a buffer without a Hash object: about 0.1 µs per key check
// instead of 0.4 (this runs on every request). Deno uses node:crypto.
const nativeSha256 = typeof Bun === 'undefined' ? undefined : Bun.SHA256

/** The digest the caches hold: SHA-256 of the secret, never the secret itself. */
export function secretDigest(secret: string, into?: Buffer): Buffer {
  if (!nativeSha256) return createHash('sha256').update(secret).digest()
  const out = into ?? Buffer.allocUnsafe(32)
  nativeSha256.hash(secret, out)
  return out
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The token from `Authorization: Bearer <key>` or `x-api-key: <key>` (SPEC §1). */
export function tokenFrom(headers: Headers): string | undefined {
  const auth = headers.get('authorization')
  if (auth?.startsWith('Bearer ') && auth.charCodeAt(auth.length - 1) > 32) return auth.slice(7).trimStart()
  if (auth) {
    const space = auth.indexOf(' ')
    if (space !== -1 && auth.slice(0, space).toLowerCase() === 'bearer') return auth.slice(space + 1).trim()
    return auth.trim()
  }
  return headers.get('x-api-key')?.trim() || undefined
}
