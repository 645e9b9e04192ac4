// SPEC §4.2: verified keys are cached in process and, in cluster mode, in Redis, keyed by id and
// holding a SHA-256 of the secret plus the key's record (never the secret, never the argon2 hash).
// Before an entry expires it is read again from the store, without argon2 (`Authenticator.refresh`).
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { KeyRecord } from '../store/store.ts'

export interface CachedKey {
  readonly digest: Buffer
  readonly record: KeyRecord
  readonly until: number
  /**
   * SHA-256 of the argon2 hash the digest was verified against (`hashTag`): a refresh that finds the
   * same hash in the store keeps the entry without verifying again. Empty when unknown.
   */
  readonly hashTag: string
  /** When a request should start a refresh; moved on when one starts, so only one runs at a time. */
  refreshAt: number
}

/** What a cache entry remembers of the argon2 hash: its SHA-256, which verifies nothing by itself. */
export const hashTag = (hash: string): string => createHash('sha256').update(hash).digest('hex')

/** Whether `entry` was verified against the argon2 hash `record` holds now (never, when its tag is unknown). */
export const sameHash = (entry: CachedKey, record: KeyRecord): boolean => entry.hashTag !== '' && entry.hashTag === hashTag(record.hash)

/** An entry is refreshed halfway through the time it has left, so a key in use never expires. */
export const refreshTime = (now: number, until: number): number => now + (until - now) / 2

const MAX_LOCAL = 50_000
const redisKey = (id: string) => `nnz:key:${id}`

export class KeyCache {
  private readonly local = new Map<string, CachedKey>()
  /**
   * Keys found revoked or expired, until the TTL or a change to them: a client that keeps sending one
   * (a retry loop, a forgotten cron job) is answered from memory, not with a store lookup per request.
   * Neither state ends by itself: only a change, which evicts here, does.
   */
  private readonly refused = new Map<string, { readonly state: 'revoked' | 'expired'; readonly until: number }>()
  /** Bumped on every eviction: a fill that started before an eviction is dropped (it may be stale). */
  private generation = 0

  constructor(
    private readonly ttlMs: number,
    private readonly redis?: Redis,
  ) {}

  get size(): number {
    return this.local.size
  }

  ticket(): number {
    return this.generation
  }

  /** A fresh entry. One past its TTL is not returned, but stays held (`held`). */
  getLocal(id: string, now: number): CachedKey | undefined {
    const hit = this.local.get(id)
    return hit !== undefined && hit.until > now ? hit : undefined
  }

  /**
   * The entry held for a key, expired or not. After a key's idle spell its entry is past its TTL, but
   * its digest and `hashTag` still tell whether the secret was verified against the hash the store
   * holds now: then the key's next request reads the record again and needs no argon2.
   */
  held(id: string): CachedKey | undefined {
    return this.local.get(id)
  }

  async getShared(id: string, now: number): Promise<CachedKey | undefined> {
    if (!this.redis || this.redis.status !== 'ready') return undefined
    try {
      const raw = await this.redis.get(redisKey(id))
      if (!raw) return undefined
      const { d, r, u, h } = JSON.parse(raw) as { d: string; r: Omit<KeyRecord, 'hash'>; u: number; h?: string }
      if (u <= now) return undefined
      return { digest: Buffer.from(d, 'hex'), record: { ...r, hash: '' }, until: u, hashTag: h ?? '', refreshAt: refreshTime(now, u) }
    } catch {
      return undefined
    }
  }

  /** Whether `id` was found revoked or expired within the TTL, and no change to it was heard since. */
  refusal(id: string, now: number): 'revoked' | 'expired' | undefined {
    const hit = this.refused.get(id)
    return hit !== undefined && hit.until > now ? hit.state : undefined
  }

  /** Remembers a refused key, in process only, unless evictions happened since `ticket`. */
  refuse(id: string, state: 'revoked' | 'expired', ticket: number, now: number): void {
    if (this.ttlMs <= 0 || ticket !== this.generation) return
    setBounded(this.refused, id, { state, until: now + this.ttlMs })
  }

  /** Stores a verified key in process (and in Redis when `shared`), unless evictions happened since `ticket`. */
  fill(entry: CachedKey, ticket: number, shared: boolean): void {
    if (this.ttlMs <= 0 || ticket !== this.generation) return
    setBounded(this.local, entry.record.id, entry)
    if (shared && this.redis?.status === 'ready') {
      const { hash: _hash, ...record } = entry.record
      const value = JSON.stringify({ d: entry.digest.toString('hex'), r: record, u: entry.until, h: entry.hashTag })
      this.redis.set(redisKey(entry.record.id), value, 'PX', Math.max(1, entry.until - Date.now())).catch(() => {})
    }
  }

  untilFor(record: KeyRecord, now: number): number {
    const ttlEnd = now + this.ttlMs
    return record.expiresAt !== null && record.expiresAt < ttlEnd ? Math.max(record.expiresAt, now + 1) : ttlEnd
  }

  /** SPEC §4.5: drop a changed key everywhere this replica can reach. */
  async evict(id: string): Promise<void> {
    this.generation++
    this.local.delete(id)
    this.refused.delete(id)
    if (this.redis?.status === 'ready') await this.redis.del(redisKey(id)).catch(() => {})
  }

  /**
   * Changes may have been missed (a listener reconnected; another process wrote the SQLite file): every
   * entry held in process expires at once. Each key's next use reads its record again, and runs argon2
   * only where the hash changed, so a reconnect does not set off one argon2 per key in use.
   */
  expireLocal(): void {
    this.generation++
    this.refused.clear()
    for (const [id, entry] of this.local) this.local.set(id, { ...entry, until: 0, refreshAt: 0 })
  }
}

/**
 * Sets `key` at the end of `map`, so the oldest entry is the one set longest ago, dropping that one
 * when the map holds MAX_LOCAL already (a renewal makes no room).
 */
function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  if (map.size >= MAX_LOCAL) {
    const oldest = map.keys().next().value
    if (oldest !== undefined) map.delete(oldest)
  }
  map.set(key, value)
}
