// SPEC §4.2: verifying a key on each request without argon2. Parse the id; in-process cache, then
// Redis; compare SHA-256 digests in constant time. Only on a miss: load by id, argon2-verify, fill
// both caches. A key in use is read again before its entry expires, off the request path and without
// argon2. Malformed tokens and unknown ids never reach argon2; failures are throttled per address.
import { GatewayError } from '../errors.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { type KeyRecord, keyState, type Store } from '../store/store.ts'
import { type CachedKey, hashTag, type KeyCache, refreshTime, sameHash } from './cache.ts'
import { parseKey, sameDigest, secretDigest, tokenFrom } from './format.ts'
import type { Hasher } from './hasher.ts'
import type { FailureThrottle } from './throttle.ts'

export type AuthFailure = 'missing' | 'malformed' | 'invalid' | 'revoked' | 'expired'

/** A 401 that remembers why, for metrics and the audit log; the key id when one was presented. */
export class AuthError extends GatewayError {
  constructor(
    readonly reason: AuthFailure,
    message: string,
    readonly keyId?: string,
  ) {
    super('unauthorized', message, { 'www-authenticate': 'Bearer' })
  }
}

/** A refresh that could not renew its entry (store down) is tried again after this long. */
const REFRESH_RETRY_MS = 1000

const MESSAGES: Record<AuthFailure, string> = {
  missing: 'API key required: send Authorization: Bearer <key> or x-api-key: <key>',
  malformed: 'API key malformed: expected nnz_<id>_<secret>',
  invalid: 'API key invalid',
  revoked: 'API key revoked',
  expired: 'API key expired',
}

export interface AuthenticatorDeps {
  readonly store: Store
  readonly cache: KeyCache
  readonly hasher: Hasher
  readonly throttle: FailureThrottle
  readonly metrics: Metrics
  readonly onUse: (id: string, at: number) => void
  /** Whether verified keys go into the shared (Redis) cache. */
  readonly shared: boolean
}

/** What the request path needs from authentication; the bench swaps in an allow-all one. */
export interface KeyAuthenticator {
  /** A cached key is answered synchronously: no promise and no turn of the loop on the hot path. */
  authenticate(headers: Headers, clientIp: string): KeyRecord | Promise<KeyRecord>
}

export class Authenticator implements KeyAuthenticator {
  /** A burst of first requests with one new key shares one load and one argon2 verification. */
  private readonly verifying = new Map<string, Promise<KeyRecord>>()

  private readonly memoryHit: () => void
  private readonly scratch = Buffer.alloc(32)

  constructor(private readonly deps: AuthenticatorDeps) {
    this.memoryHit = deps.metrics.keyCacheHits.bind({ layer: 'memory' })
  }

  authenticate(headers: Headers, clientIp: string): KeyRecord | Promise<KeyRecord> {
    const token = tokenFrom(headers)
    if (!token) throw this.reject('missing', clientIp, undefined, false)
    const parsed = parseKey(token)
    if (!parsed) throw this.reject('malformed', clientIp)
    const now = Date.now()
    const local = this.deps.cache.getLocal(parsed.id, now)
    if (local) {
      this.memoryHit()
      // The digest is compared at once and not kept: it goes into one reused buffer.
      const record = this.accept(local, secretDigest(parsed.secret, this.scratch), clientIp, now)
      if (local.refreshAt <= now) this.refresh(local, now)
      return record
    }
    return this.authenticateSlow(parsed.id, parsed.secret, clientIp, now)
  }

  /** Not in this process's cache: Redis, then the store and argon2. */
  private async authenticateSlow(id: string, secret: string, clientIp: string, now: number): Promise<KeyRecord> {
    const { cache, metrics } = this.deps
    // Found revoked or expired lately: refused from memory, as the store would refuse it.
    const refusal = cache.refusal(id, now)
    if (refusal) throw this.reject(refusal, clientIp, id, false)
    const digest = secretDigest(secret)
    // Beyond this point a failure costs a Redis or store round trip, and possibly argon2.
    const wait = this.deps.throttle.blockedFor(clientIp, now)
    if (wait > 0) {
      metrics.authThrottled.inc()
      throw new GatewayError('rate_limited', `too many failed authentication attempts from this address; retry in ${wait}s`, {
        'retry-after': String(wait),
      })
    }
    const ticket = cache.ticket()
    const shared = await cache.getShared(id, now)
    if (shared) {
      metrics.keyCacheHits.inc({ layer: 'redis' })
      if (sameDigest(shared.digest, digest)) cache.fill(shared, ticket, false)
      return this.accept(shared, digest, clientIp, now)
    }
    metrics.keyCacheMisses.inc()
    // Shared only with requests that came before any eviction since it began: one begun before a
    // revocation may have read the record from before it (SPEC §4.5).
    const flight = `${id}:${digest.toString('hex')}:${ticket}`
    let pending = this.verifying.get(flight)
    if (!pending) {
      pending = this.verify(id, secret, digest, clientIp, now, ticket).finally(() => this.verifying.delete(flight))
      this.verifying.set(flight, pending)
    }
    const record = await pending
    this.deps.onUse(record.id, now)
    return record
  }

  private async verify(id: string, secret: string, digest: Buffer, clientIp: string, now: number, ticket: number): Promise<KeyRecord> {
    const { cache, metrics } = this.deps
    const parsed = { id, secret }
    let record: KeyRecord | undefined
    try {
      record = await this.deps.store.getKey(parsed.id)
    } catch {
      throw new GatewayError('unavailable', 'the key store is unreachable; retry shortly', { 'retry-after': '2' })
    }
    if (!record) throw this.reject('invalid', clientIp, parsed.id)
    // A revoked or expired key is refused before hashing: knowing its id gains nothing.
    const state = keyState(record, now)
    if (state !== 'active') {
      cache.refuse(record.id, state, ticket, now)
      throw this.reject(state, clientIp, parsed.id, false)
    }
    if (!this.stillVerified(digest, record)) {
      const ok = await this.deps.hasher.verify(record.hash, parsed.secret)
      metrics.argon2Verifications.inc({ result: ok ? 'ok' : 'mismatch' })
      if (!ok) throw this.reject('invalid', clientIp, parsed.id)
    }
    const until = cache.untilFor(record, now)
    const entry: CachedKey = { digest, record, until, hashTag: hashTag(record.hash), refreshAt: refreshTime(now, until) }
    cache.fill(entry, ticket, this.deps.shared)
    return record
  }

  /**
   * A key back from an idle spell: its expired entry is still held, and if it was verified for this
   * secret against the hash the store holds now, argon2 would only repeat that verification. The
   * record, just read, is what is cached anew.
   */
  private stillVerified(digest: Buffer, record: KeyRecord): boolean {
    const held = this.deps.cache.held(record.id)
    if (held === undefined || !sameDigest(held.digest, digest) || !sameHash(held, record)) return false
    this.deps.metrics.keyCacheRefreshes.inc({ result: 'revalidated' })
    return true
  }

  /**
   * SPEC §4.2, §4.5: the TTL bounds how stale a cached record may be, not how often argon2 runs. A key
   * in use is read again from the store halfway through its entry's life, off the request path. If
   * its argon2 hash is unchanged, the digest verified against it still holds, and the entry is renewed
   * with the record as it is now (revoked, expired or changed limits take effect). If the hash changed
   * (rotated where this replica heard nothing) or the key is gone, the entry is dropped and the next
   * request verifies from scratch. Before this, every `KEY_CACHE_TTL_S` the first request ran argon2
   * while the key's other requests waited for it (bench/RESULTS.md).
   */
  private refresh(entry: CachedKey, now: number): void {
    entry.refreshAt = now + REFRESH_RETRY_MS
    // Written by a version that did not record the hash: it expires and is verified as before.
    if (entry.hashTag === '') return
    void this.renew(entry)
  }

  private async renew(entry: CachedKey): Promise<void> {
    const { cache, metrics } = this.deps
    const id = entry.record.id
    const ticket = cache.ticket()
    let record: KeyRecord | undefined
    try {
      record = await this.deps.store.getKey(id)
    } catch {
      // The store is down: the entry lasts as long as it would have, and the next request retries.
      metrics.keyCacheRefreshes.inc({ result: 'failed' })
      return
    }
    if (record && sameHash(entry, record)) {
      const now = Date.now()
      const until = cache.untilFor(record, now)
      cache.fill({ ...entry, record, until, refreshAt: refreshTime(now, until) }, ticket, this.deps.shared)
      metrics.keyCacheRefreshes.inc({ result: 'renewed' })
    } else {
      metrics.keyCacheRefreshes.inc({ result: 'dropped' })
      await cache.evict(id)
    }
  }

  private accept(entry: CachedKey, digest: Buffer, clientIp: string, now: number): KeyRecord {
    if (!sameDigest(entry.digest, digest)) throw this.reject('invalid', clientIp, entry.record.id)
    const state = keyState(entry.record, now)
    if (state !== 'active') throw this.reject(state, clientIp, entry.record.id, false)
    this.deps.onUse(entry.record.id, now)
    return entry.record
  }

  private reject(reason: AuthFailure, clientIp: string, keyId?: string, counts = true): AuthError {
    this.deps.metrics.authFailures.inc({ reason })
    // A revoked or expired key is a client configuration problem, not guessing: it does not count.
    if (counts) this.deps.throttle.fail(clientIp)
    return new AuthError(reason, MESSAGES[reason], keyId)
  }
}

/** `last_used_at` is collected in memory and written in batches (issue: never one write per request). */
export class LastUsed {
  private pending = new Map<string, number>()

  touch(id: string, at: number): void {
    this.pending.set(id, at)
  }

  async flush(store: Store): Promise<void> {
    if (this.pending.size === 0) return
    const batch = this.pending
    this.pending = new Map()
    try {
      await store.touchKeys(batch)
    } catch {
      // Store down: keep the newest times for the next flush.
      for (const [id, at] of batch) if ((this.pending.get(id) ?? 0) < at) this.pending.set(id, at)
    }
  }
}
