// SPEC §4.2, §4.5: the key cache's TTL bounds how stale a cached record may be, not how often argon2
// runs. A key in use is read again before its entry expires; a key back from an idle spell is read
// again on its next request; in both cases the same argon2 hash means no new argon2. Changes written
// straight into the store (no notification, as when a replica missed one) reach a cached key within
// the TTL. Each mode runs against its real store: SQLite, and Postgres with Redis.

import { Database } from 'bun:sqlite'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { Authenticator } from '../src/keys/authenticator.ts'
import { KeyCache } from '../src/keys/cache.ts'
import { newKey } from '../src/keys/format.ts'
import { Hasher } from '../src/keys/hasher.ts'
import { KeyService } from '../src/keys/service.ts'
import { FailureThrottle } from '../src/keys/throttle.ts'
import { createMetrics } from '../src/metrics/metrics.ts'
import { SqliteStore } from '../src/store/sqlite.ts'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'
import { type FreshDatabase, freshDatabase, freshRedis, metricValue } from './helpers/infra.ts'

const TTL_MS = 1000

const fake = new FakeOllama()
beforeAll(() => {
  fake.start()
})
afterAll(() => fake.stop())

/** Writes straight into a gateway's store, as another tool or a replica that sent no NOTIFY would. */
interface BehindTheBack {
  revoke(id: string): Promise<void>
  setHash(id: string, hash: string): Promise<void>
  close(): Promise<void>
}

interface Mode {
  name: string
  /**
   * Embedded mode also sees another process's write to its SQLite file within 0.5 s (the key change counter)
   * and expires every entry; in cluster mode a write without NOTIFY is found by the renewal alone.
   */
  watchesWrites: boolean
  start(): Promise<{ gw: GatewayProcess; store: BehindTheBack }>
  cleanup(): Promise<void>
}

let db: FreshDatabase | undefined
const modes: Mode[] = [
  {
    name: 'embedded (SQLite)',
    watchesWrites: true,
    async start() {
      const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, KEY_CACHE_TTL_S: String(TTL_MS / 1000) } })
      const sqlite = new Database(join(gw.dataDir, 'neuronetz.db'))
      sqlite.exec('pragma busy_timeout = 5000')
      const store: BehindTheBack = {
        async revoke(id) {
          sqlite.query('update api_keys set revoked_at = ?, updated_at = ? where id = ?').run(Date.now(), Date.now(), id)
        },
        async setHash(id, hash) {
          sqlite.query('update api_keys set hash = ?, updated_at = ? where id = ?').run(hash, Date.now(), id)
        },
        async close() {
          sqlite.close()
        },
      }
      return { gw, store }
    },
    cleanup: async () => {},
  },
  {
    name: 'cluster (Postgres + Redis)',
    watchesWrites: false,
    async start() {
      db = await freshDatabase()
      const env = {
        OLLAMA_BASE_URL: fake.url,
        KEY_CACHE_TTL_S: String(TTL_MS / 1000),
        DATABASE_URL: db.url,
        REDIS_URL: await freshRedis(8),
      }
      const gw = await startGateway({ env })
      const sql = postgres(db.url, { max: 1, onnotice: () => {} })
      const store: BehindTheBack = {
        async revoke(id) {
          await sql`update api_keys set revoked_at = now(), updated_at = now() where id = ${id}`
        },
        async setHash(id, hash) {
          await sql`update api_keys set hash = ${hash}, updated_at = now() where id = ${id}`
        },
        close: () => sql.end(),
      }
      return { gw, store }
    },
    cleanup: async () => db?.drop(),
  },
]

for (const mode of modes) {
  describe(`key cache TTL, ${mode.name}`, () => {
    let gw: GatewayProcess
    let store: BehindTheBack
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(gw.url + path, { ...init, headers: { 'content-type': 'application/json', ...gw.auth } })
    const createKey = async (name: string) => {
      const res = await admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name, scopes: ['inference'] }) })
      expect(res.status).toBe(201)
      return (await res.json()) as { key: string; id: string }
    }
    const chat = (key: string) =>
      fetch(`${gw.url}/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'llama3.2', messages: [], stream: false }),
      })
    const metric = async (name: string, labels: Record<string, string> = {}) =>
      metricValue(await (await admin('/metrics')).text(), name, labels)
    /** Uses `key` every 50 ms until it is refused or `withinMs` passes; the refusal and when it came. */
    const useUntilRefused = async (key: string, withinMs: number) => {
      const start = performance.now()
      while (performance.now() - start < withinMs) {
        const res = await chat(key)
        if (res.status !== 200) return { res, afterMs: performance.now() - start }
        await res.arrayBuffer()
        await Bun.sleep(50)
      }
      return { res: undefined, afterMs: performance.now() - start }
    }

    beforeAll(async () => {
      ;({ gw, store } = await mode.start())
    }, 30_000)
    afterAll(async () => {
      await store.close()
      await gw.stop()
      await mode.cleanup()
    }, 30_000)

    test('a key in steady use is renewed before its TTL runs out: one argon2 in all, never refused', async () => {
      const { key } = await createKey('steady')
      const argon2 = await metric('nnz_argon2_verifications_total')
      const renewed = await metric('nnz_key_cache_refreshes_total', { result: 'renewed' })
      // 2.6 TTLs of use: the entry would have expired twice. (The admin key that reads /metrics is
      // cached too, and needs no argon2 either: it is read again after each gap between reads.)
      const { res } = await useUntilRefused(key, 2.6 * TTL_MS)
      expect(res?.status).toBeUndefined()
      expect(await metric('nnz_argon2_verifications_total')).toBe(argon2 + 1)
      expect(await metric('nnz_key_cache_refreshes_total', { result: 'renewed' })).toBeGreaterThanOrEqual(renewed + 2)
    })

    test('a key back after an idle spell longer than the TTL is read again, with no argon2', async () => {
      const { key } = await createKey('idle')
      expect((await chat(key)).status).toBe(200)
      const argon2 = await metric('nnz_argon2_verifications_total')
      const revalidated = await metric('nnz_key_cache_refreshes_total', { result: 'revalidated' })
      await Bun.sleep(TTL_MS + 300)
      expect((await chat(key)).status).toBe(200)
      expect((await chat(key)).status).toBe(200)
      expect(await metric('nnz_argon2_verifications_total')).toBe(argon2)
      // This key's and the admin key's (idle as long).
      expect(await metric('nnz_key_cache_refreshes_total', { result: 'revalidated' })).toBeGreaterThanOrEqual(revalidated + 1)
      // A wrong secret for the same id still costs its own argon2, and is refused.
      await Bun.sleep(TTL_MS + 300)
      const wrong = `${key.slice(0, key.lastIndexOf('_') + 1)}${newKey().secret}`
      const refused = await chat(wrong)
      expect(refused.status).toBe(401)
      expect(await refused.json()).toEqual({ error: 'API key invalid' })
      expect(await metric('nnz_argon2_verifications_total', { result: 'mismatch' })).toBeGreaterThanOrEqual(1)
      expect((await chat(key)).status).toBe(200)
    })

    test('a revocation written straight to the store, heard by no replica, reaches a key in use within the TTL', async () => {
      const { key, id } = await createKey('revoked behind the back')
      expect((await chat(key)).status).toBe(200)
      await store.revoke(id)
      const { res, afterMs } = await useUntilRefused(key, TTL_MS + 1000)
      expect(res?.status).toBe(401)
      expect(await res?.json()).toEqual({ error: 'API key revoked' })
      expect(afterMs).toBeLessThan(TTL_MS + 1000)
    })

    test('a rotation written straight to the store: the old secret is refused within the TTL, the new one works', async () => {
      const { key, id } = await createKey('rotated behind the back')
      expect((await chat(key)).status).toBe(200)
      const dropped = await metric('nnz_key_cache_refreshes_total', { result: 'dropped' })
      const rotated = newKey(id)
      const hasher = new Hasher({ memoryCost: 19456, timeCost: 2, parallelism: 1, concurrency: 1, maxQueue: 1 })
      await store.setHash(id, await hasher.hash(rotated.secret))
      const { res } = await useUntilRefused(key, TTL_MS + 1000)
      expect(res?.status).toBe(401)
      expect(await res?.json()).toEqual({ error: 'API key invalid' })
      if (!mode.watchesWrites) expect(await metric('nnz_key_cache_refreshes_total', { result: 'dropped' })).toBe(dropped + 1)
      expect((await chat(rotated.token)).status).toBe(200)
    })
  })
}

/** argon2 held until `open()`: a first request's verification stays under way meanwhile. */
class HeldHasher extends Hasher {
  private gate = Promise.resolve()
  private opened = () => {}
  /** Settles once a verification is waiting at the gate. */
  entered: Promise<void> = Promise.resolve()
  private enter = () => {}

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.opened = resolve
    })
    this.entered = new Promise((resolve) => {
      this.enter = resolve
    })
  }

  open(): void {
    this.opened()
  }

  override async verify(encoded: string, secret: string): Promise<boolean> {
    this.enter()
    await this.gate
    return super.verify(encoded, secret)
  }
}

describe('a first verification under way when its key is revoked (SPEC §4.5)', () => {
  test('a request that comes after the revocation does not share it, and is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnz-test-auth-'))
    const store = new SqliteStore(dir)
    try {
      await store.migrate()
      const hasher = new HeldHasher({ memoryCost: 19456, timeCost: 2, parallelism: 1, concurrency: 2, maxQueue: 16 })
      const cache = new KeyCache(60_000)
      const keys = new KeyService(store, hasher, (id) => cache.evict(id))
      const auth = new Authenticator({
        store,
        cache,
        hasher,
        throttle: new FailureThrottle(20, 60_000),
        metrics: createMetrics(),
        onUse: () => {},
        shared: false,
      })
      const { key, record } = await keys.create({ name: 'revoked mid-verification' })
      const headers = new Headers({ authorization: `Bearer ${key}` })
      hasher.hold()
      // The first request has read the active record and waits for argon2 when the key is revoked.
      const first = auth.authenticate(headers, '127.0.0.1')
      await hasher.entered
      await keys.revoke(record.id)
      const second = Promise.resolve(auth.authenticate(headers, '127.0.0.1')).then(
        (admitted) => `admitted ${admitted.id}`,
        (err: Error) => err.message,
      )
      hasher.open()
      // The first came before the revocation and is answered as it began; the second is not.
      expect((await first).id).toBe(record.id)
      expect(await second).toBe('API key revoked')
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
