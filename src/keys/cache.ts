// SPEC §4.2: verified keys are cached in process and, in cluster mode, in Redis, keyed by id and
// holding a SHA-256 of the secret plus the key's record (never the secret, never the argon2 hash).
import type { Redis } from 'ioredis'
import type { KeyRecord } from '../store/store.ts'

export interface CachedKey {
  readonly digest: Buffer
  readonly record: KeyRecord
  readonly until: number
}

const MAX_LOCAL = 50_000
const redisKey = (id: string) => `nnz:key:${id}`

export class KeyCache {
  private readonly local = new Map<string, CachedKey>()
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

  getLocal(id: string, now: number): CachedKey | undefined {
    const hit = this.local.get(id)
    if (hit && hit.until > now) return hit
    if (hit) this.local.delete(id)
    return undefined
  }

  async getShared(id: string, now: number): Promise<CachedKey | undefined> {
    if (!this.redis || this.redis.status !== 'ready') return undefined
    try {
      const raw = await this.redis.get(redisKey(id))
      if (!raw) return undefined
      const { d, r, u } = JSON.parse(raw) as { d: string; r: Omit<KeyRecord, 'hash'>; u: number }
      if (u <= now) return undefined
      return { digest: Buffer.from(d, 'hex'), record: { ...r, hash: '' }, until: u }
    } catch {
      return undefined
    }
  }

  /** Stores a verified key in process (and in Redis when `shared`), unless evictions happened since `ticket`. */
  fill(entry: CachedKey, ticket: number, shared: boolean): void {
    if (this.ttlMs <= 0 || ticket !== this.generation) return
    if (this.local.size >= MAX_LOCAL) {
      const oldest = this.local.keys().next().value
      if (oldest !== undefined) this.local.delete(oldest)
    }
    this.local.set(entry.record.id, entry)
    if (shared && this.redis?.status === 'ready') {
      const { hash: _hash, ...record } = entry.record
      const value = JSON.stringify({ d: entry.digest.toString('hex'), r: record, u: entry.until })
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
    if (this.redis?.status === 'ready') await this.redis.del(redisKey(id)).catch(() => {})
  }

  /** After a listener reconnect notifications may have been missed: drop everything held in process. */
  clearLocal(): void {
    this.generation++
    this.local.clear()
  }
}
