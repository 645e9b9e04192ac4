// Where the test suite finds its real Postgres and Redis (SPEC §9: never mocked), and fresh,
// isolated databases on them for each test file.
import { Redis } from 'ioredis'
import postgres from 'postgres'

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface FreshDatabase {
  readonly url: string
  readonly name: string
  drop(): Promise<void>
}

/** A new empty Postgres database on the test server; `drop()` removes it. */
export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `nnz_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  await admin.end()
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    async drop() {
      const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} })
      await sql.unsafe(`drop database if exists ${name} with (force)`).catch(() => {})
      await sql.end()
    },
  }
}

/** One of Redis's numbered databases, emptied; files get different ones so they cannot collide. */
export async function freshRedis(db: number): Promise<string> {
  const url = new URL(TEST_REDIS_URL)
  url.pathname = `/${db}`
  const redis = new Redis(url.toString())
  await redis.flushdb()
  redis.disconnect()
  return url.toString()
}

/** A value of a Prometheus series in a /metrics text, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let total = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== ' ' && rest[0] !== '{') continue
    if (want.every((w) => rest.includes(w))) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}
