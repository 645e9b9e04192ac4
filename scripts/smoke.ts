// CI smoke tests (SPEC §8.1, §8.3): the compiled binary from an empty folder with no node_modules,
// and the same source on Deno. Each: start, /healthz, one proxied streamed chat, SIGTERM, exit 0;
// then cluster mode (Postgres + Redis): a chat and its audit event.
// Usage: bun scripts/smoke.ts binary|deno   (prints one `ok`/`not ok` line per check)
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FakeOllama } from '../test/helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from '../test/helpers/gateway.ts'
import { freshDatabase, freshRedis } from '../test/helpers/infra.ts'

const root = join(import.meta.dir, '..')
const which = process.argv[2]
if (which !== 'binary' && which !== 'deno') {
  process.stderr.write('usage: bun scripts/smoke.ts binary|deno\n')
  process.exit(2)
}

let failed = 0

/** One raw HTTP/1.1 request with the Host header given (fetch sets its own); the answer's status. */
function statusWithHost(port: number, host: string, head: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let got = ''
    socket.on('data', (d) => {
      got += d.toString('latin1')
      if (got.includes('\r\n')) {
        socket.destroy()
        resolve(Number(got.slice(9, 12)))
      }
    })
    socket.on('error', reject)
    socket.write(`${head}\r\nHost: ${host}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  })
}
const check = (name: string, ok: boolean, detail = '') => {
  if (!ok) failed++
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${which}: ${name}${ok || !detail ? '' : ` (${detail})`}\n`)
}

const fake = new FakeOllama().start()
fake.behaviour.chunks = 5
fake.behaviour.chunkDelayMs = 20
const dir = mkdtempSync(join(tmpdir(), `nnz-smoke-${which}-`))
let command: string[]
if (which === 'binary') {
  copyFileSync(join(root, 'dist', 'neuronetz-gateway'), join(dir, 'neuronetz-gateway'))
  command = [join(dir, 'neuronetz-gateway')]
} else {
  command = [join(root, 'node_modules', '.bin', 'deno'), 'run', '-A', join(root, 'src', 'main.deno.ts')]
}

try {
  const gw = await startGateway({
    command,
    cwd: which === 'binary' ? dir : root,
    env: { OLLAMA_BASE_URL: fake.url, DATA_DIR: join(dir, 'data') },
  })
  check('starts and listens', gw.port > 0)
  const health = await fetch(`${gw.url}/healthz`)
  check('/healthz answers 200', health.status === 200, String(health.status))
  const res = await fetch(`${gw.url}/api/chat`, {
    method: 'POST',
    headers: gw.auth,
    body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }),
  })
  const text = await res.text()
  const sent = fake.sentText(fake.last('/api/chat'))
  check(
    'a streamed chat arrives byte for byte',
    res.status === 200 && text === sent && text.includes('"done":true'),
    `status ${res.status}`,
  )
  // Non-streamed: on Bun through the gateway's own HTTP/1.1 client (SPEC §7), on Deno through fetch.
  const whole = await fetch(`${gw.url}/api/chat`, {
    method: 'POST',
    headers: gw.auth,
    body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false }),
  })
  const wholeText = await whole.text()
  check(
    'a non-streamed chat arrives whole',
    whole.status === 200 && wholeText === fake.sentText(fake.last('/api/chat')),
    `status ${whole.status}`,
  )
  // A Host of two letters (a container named `gw`): Elysia's fetch handler, which Deno runs, cut the
  // path at a fixed offset that such a URL is too short for (runtime/deno.ts).
  const shortHost = await statusWithHost(
    gw.port,
    'gw',
    `POST /api/chat HTTP/1.1\r\nAuthorization: ${gw.auth.authorization}\r\nContent-Type: application/json`,
    JSON.stringify({ model: 'llama3.2', messages: [], stream: false }),
  )
  check('a request with a two-letter Host reaches its route', shortHost === 200, `status ${shortHost}`)
  // SPEC §4.10: both chats are in the audit log, written by the embedded store's audit thread (a
  // thread that cannot start, say its module missing from the binary, is logged and replaced by the event loop).
  await Bun.sleep(600)
  const audit = (await (await fetch(`${gw.url}/admin/audit?limit=10`, { headers: gw.auth })).json()) as { items?: unknown[] }
  check(
    'audit events are stored, by the audit thread',
    (audit.items?.length ?? 0) >= 2 && !gw.output().includes('audit thread stopped'),
    `${audit.items?.length ?? 0} events\n${gw.output()}`,
  )
  if (which === 'binary') {
    // What the container HEALTHCHECK runs (Dockerfile).
    const probe = Bun.spawnSync([...command, 'healthcheck'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', PORT: String(gw.port), HOST: '127.0.0.1' },
    })
    check('healthcheck subcommand exits 0 while serving', probe.exitCode === 0, `exit ${probe.exitCode}`)
  }
  const code = await gw.stop('SIGTERM')
  check('SIGTERM exits 0', code === 0, `exit ${code}\n${gw.output()}`)
  // Cluster mode: postgres.js and ioredis from the binary and on Deno, and the audit COPY through them.
  const db = await freshDatabase()
  let cluster: GatewayProcess | undefined
  try {
    cluster = await startGateway({
      command,
      cwd: which === 'binary' ? dir : root,
      env: { OLLAMA_BASE_URL: fake.url, DATA_DIR: join(dir, 'data-cluster'), DATABASE_URL: db.url, REDIS_URL: await freshRedis(7) },
    })
    const chat = await fetch(`${cluster.url}/api/chat`, {
      method: 'POST',
      headers: cluster.auth,
      body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false }),
    })
    await chat.text()
    await Bun.sleep(600)
    const listed = await fetch(`${cluster.url}/admin/audit?limit=10`, { headers: cluster.auth })
    const events = ((await listed.json()) as { items?: Array<{ path?: string; status?: number }> }).items ?? []
    check(
      'cluster mode: a chat is answered and its audit event stored in Postgres',
      chat.status === 200 && events.some((e) => e.path === '/api/chat' && e.status === 200),
      `status ${chat.status}, events ${JSON.stringify(events)}\n${cluster.output()}`,
    )
  } finally {
    await cluster?.stop('SIGTERM')
    await db.drop()
  }
  if (which === 'binary') {
    // The argon2 addon is unpacked into TMPDIR at run time: without a usable one, one clear line.
    const noTmp = Bun.spawnSync(command, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', TMPDIR: join(dir, 'missing'), DATA_DIR: join(dir, 'data') },
    })
    const err = noTmp.stderr.toString()
    check(
      'no writable TMPDIR: exit 1 with a clear message',
      noTmp.exitCode === 1 && err.includes('set TMPDIR') && err.trim().split('\n').length === 1,
      err,
    )
  }
} catch (err) {
  check('runs', false, String(err))
} finally {
  await fake.stop()
  rmSync(dir, { recursive: true, force: true })
}
process.exit(failed === 0 ? 0 : 1)
