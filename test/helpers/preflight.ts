// Runs once before the suite (bunfig.toml preload). The suite needs a real Postgres and Redis; when
// either is unreachable it stops here with one message saying how to start them, never skipping.

import { afterAll } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import postgres from 'postgres'
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './infra.ts'

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@')

async function checkPostgres(): Promise<string | undefined> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await sql`select 1`
    return undefined
  } catch (err) {
    return `Postgres at ${redact(TEST_DATABASE_URL)}: ${(err as Error).message}`
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
}

async function checkRedis(): Promise<string | undefined> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
    return undefined
  } catch (err) {
    return `Redis at ${redact(TEST_REDIS_URL)}: ${(err as Error).message}`
  } finally {
    redis.disconnect()
  }
}

// The browser test drives a real Chromium; the TLS test makes a certificate with openssl.
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const tools = [
  existsSync(chromium) ? undefined : `Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM_PATH)`,
  Bun.which('openssl') ? undefined : 'openssl (apt-get install openssl)',
]
const problems = [...(await Promise.all([checkPostgres(), checkRedis()])), ...tools].filter(Boolean)
if (problems.length > 0) {
  process.stderr.write(
    `\nThe tests need a real Postgres and Redis, Chromium and openssl; missing:\n${problems.map((p) => `  - ${p}`).join('\n')}\n\n` +
      'Start Postgres and Redis locally (Debian/Ubuntu):\n' +
      '  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n' +
      '  redis-server --daemonize yes --port 6379 --save "" --appendonly no\n' +
      'or point TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) and\n' +
      'TEST_REDIS_URL (default redis://127.0.0.1:6379) at running servers.\n\n',
  )
  process.exit(1)
}

// Every temporary directory of the run (the gateways' data directories, the stores' files, the TLS
// certificates, the browser test's binary) is made under one directory of the run's own, removed after
// the last test (a hook in this preload runs once for the whole run). The gateways the tests start
// inherit it as their TMPDIR.
const runTmp = mkdtempSync(join(tmpdir(), 'nnz-run-'))
process.env.TMPDIR = runTmp
afterAll(() => rmSync(runTmp, { recursive: true, force: true }))
