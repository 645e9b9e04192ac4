// SPEC §4.11: the CLI twins act on the configured store, on both stores; a key revoked from the CLI
// is refused by a running gateway (embedded: the key change counter in SQLite; cluster: NOTIFY).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { BUN, startGateway } from './helpers/gateway.ts'
import { type FreshDatabase, freshDatabase, freshRedis } from './helpers/infra.ts'

const ROOT = join(import.meta.dir, '..')
const fake = new FakeOllama()
let db: FreshDatabase
beforeAll(async () => {
  fake.start()
  db = await freshDatabase()
}, 30_000)
afterAll(async () => {
  await fake.stop()
  await db.drop()
}, 30_000)

function cli(args: string[], env: Record<string, string>): { code: number; out: string; err: string } {
  const proc = Bun.spawnSync([BUN, join(ROOT, 'src/main.ts'), ...args], { env: { PATH: process.env.PATH ?? '', TMPDIR: '/tmp', ...env } })
  return { code: proc.exitCode ?? -1, out: proc.stdout.toString(), err: proc.stderr.toString() }
}

const stores: Array<[string, () => Promise<Record<string, string>>]> = [
  ['SQLite', async () => ({ DATA_DIR: mkdtempSync(join(tmpdir(), 'nnz-cli-')) })],
  ['Postgres', async () => ({ DATABASE_URL: db.url, REDIS_URL: await freshRedis(13) })],
]

for (const [name, makeEnv] of stores) {
  describe(`CLI on ${name}`, () => {
    test('migrate, create, list, rotate, revoke; a running gateway refuses the revoked key', async () => {
      const env = await makeEnv()
      expect(cli(['migrate'], env)).toMatchObject({ code: 0 })
      const created = cli(
        ['keys', 'create', '--name', 'cli key', '--scopes', 'inference', '--models', 'llama3.2,qwen3:*', '--rpm', '60', '--json'],
        env,
      )
      expect(created.code).toBe(0)
      const key = JSON.parse(created.out)
      expect(key).toMatchObject({ name: 'cli key', scopes: ['inference'], allowed_models: ['llama3.2', 'qwen3:*'], limits: { rpm: 60 } })
      const human = cli(['keys', 'create', '--name', 'second', '--expires-in-days', '30'], env)
      expect(human.out).toContain('Store it now, it is not shown again')
      expect(human.out).toMatch(/nnz_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}/)

      const list = cli(['keys', 'list'], env)
      expect(list.out).toContain('cli key')
      expect(list.out).toContain('second')
      expect(list.out).not.toContain(key.key.split('_')[2])

      const gw = await startGateway({ env: { ...env, OLLAMA_BASE_URL: fake.url, KEY_CACHE_TTL_S: '300' } })
      try {
        const use = (k: string) => fetch(`${gw.url}/api/tags`, { headers: { authorization: `Bearer ${k}` } })
        expect((await use(key.key)).status).toBe(200)
        const rotated = JSON.parse(cli(['keys', 'rotate', key.id, '--json'], env).out)
        expect(rotated.id).toBe(key.id)
        // The running gateway notices a change made by another process within about a second.
        let status = 200
        for (let i = 0; i < 40 && status === 200; i++) {
          await Bun.sleep(50)
          status = (await use(key.key)).status
        }
        expect(status).toBe(401)
        expect((await use(rotated.key)).status).toBe(200)
        expect(cli(['keys', 'revoke', key.id], env).out).toContain(`Revoked key ${key.id}`)
        for (let i = 0; i < 40 && status !== 401; i++) await Bun.sleep(50)
        let refused: Response | undefined
        for (let i = 0; i < 40; i++) {
          refused = await use(rotated.key)
          if (refused.status === 401) break
          await Bun.sleep(50)
        }
        expect(await refused?.json()).toEqual({ error: 'API key revoked' })
        expect(cli(['keys', 'list', '--state', 'revoked', '--json'], env).out).toContain(key.id)
      } finally {
        await gw.stop()
      }
    })

    test('bad CLI input: a clear message and a non-zero exit, nothing written', async () => {
      const env = await makeEnv()
      const before = cli(['keys', 'list', '--json'], env).out
      const cases: Array<[string[], string]> = [
        [['keys', 'create'], 'keys create needs --name'],
        [['keys', 'create', '--name', 'x', '--scopes', 'root'], "unknown scope 'root'"],
        [['keys', 'create', '--name', 'x', '--rpm', 'lots'], '--rpm must be a whole number'],
        [['keys', 'create', '--name', 'x', '--metadata', '{'], '--metadata must be a JSON object'],
        [['keys', 'revoke'], 'keys revoke needs a key id'],
        [['keys', 'revoke', 'AAAAAAAAAAAA'], "no key with id 'AAAAAAAAAAAA'"],
        [['keys', 'frobnicate'], "unknown command 'keys frobnicate'"],
        [['keys'], 'keys needs a command: create, list, revoke or rotate'],
        [['keys', 'list', '--state', 'sleepy'], '--state must be active, revoked or expired'],
        [['keys', 'create', '--name', 'x', '--models', 'llama3.2 qwen3'], "allowed model 'llama3.2 qwen3' is not a model name or glob"],
        [['keys', 'create', '--name', 'x', '--expires-at', '2020-01-01T00:00:00Z'], 'is in the past; a new key must expire later'],
      ]
      for (const [args, message] of cases) {
        const r = cli(args, env)
        expect(`${args.join(' ')} → ${r.code}`).toBe(`${args.join(' ')} → 1`)
        expect(r.err).toContain(message)
      }
      expect(cli(['keys', 'list', '--json'], env).out).toBe(before)
    })
  })
}

test('a store that cannot be reached is one clear line, exit 1', () => {
  const r = cli(['keys', 'list'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })
  expect(r.code).toBe(1)
  expect(r.err).toContain('cannot reach the store')
  expect(r.err.trim().split('\n')).toHaveLength(1)
})
