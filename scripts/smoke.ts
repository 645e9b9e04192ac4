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
/** A non-streamed chat whose answer takes 3 s, left by its client after 300 ms: what upstream and the log saw. */
async function leaveEarly(gw: GatewayProcess) {
  fake.perModel.set('llama3.2', { firstByteDelayMs: 3000 })
  try {
    const seen = fake.received.length
    const leaving = new AbortController()
    const answer = fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: gw.auth,
      body: JSON.stringify({ model: 'llama3.2', messages: [], stream: false }),
      signal: leaving.signal,
    }).catch(() => undefined)
    while (!fake.received.slice(seen).some((r) => r.path === '/api/chat')) await Bun.sleep(10)
    const record = fake.last('/api/chat')
    await Bun.sleep(300)
    leaving.abort()
    await answer
    for (let i = 0; i < 20 && !record.aborted; i++) await Bun.sleep(50)
    const id = record.headers['x-request-id']
    const line = await gw.waitForLog((l) => l.msg === 'request' && l.request_id === id, 5000).catch(() => undefined)
    return { upstreamAborted: record.aborted, status: line?.status, outcome: line?.outcome }
  } finally {
    fake.perModel.delete('llama3.2')
  }
}

/**
 * A streamed /api/generate from a raw client that does not read until the gateway has let it go, then
 * reads what comes (for up to 8 s): whether the request was reported aborted as the client's stall, and
 * upstream aborted; the last bytes read, and whether the connection closed.
 */
async function unreadStream(gw: GatewayProcess) {
  fake.perModel.set('llama3.2', { chunks: 300_000, chunkDelayMs: 0 })
  const body = JSON.stringify({ model: 'llama3.2', prompt: 'x' })
  const socket = connect(gw.port, '127.0.0.1')
  socket.pause()
  socket.on('error', () => {})
  let closed = false
  socket.on('close', () => {
    closed = true
  })
  const seen = fake.received.length
  socket.write(
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${gw.auth.authorization}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  )
  try {
    while (!fake.received.slice(seen).some((r) => r.path === '/api/generate')) await Bun.sleep(10)
    const record = fake.last('/api/generate')
    const id = record.headers['x-request-id']
    const line = await gw.waitForLog((l) => l.msg === 'request' && l.request_id === id, 8000).catch(() => undefined)
    const reported = line?.outcome === 'aborted' && String(line?.error).startsWith('client stopped reading')
    let tail = ''
    socket.on('data', (d) => {
      tail = (tail + d.toString('latin1')).slice(-400)
    })
    socket.resume()
    for (let i = 0; i < 80 && !closed && !tail.endsWith('0\r\n\r\n'); i++) await Bun.sleep(100)
    return { reported, upstreamAborted: record.aborted, tail, closed }
  } finally {
    socket.destroy()
    fake.perModel.delete('llama3.2')
  }
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
    // Short read and idle timeouts, for the client that stops reading below.
    env: { OLLAMA_BASE_URL: fake.url, DATA_DIR: join(dir, 'data'), OLLAMA_READ_TIMEOUT_S: '1', IDLE_TIMEOUT_S: '2' },
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
  // SPEC §4.8: a client that leaves before the answer's head aborts the upstream request at once (the
  // backend would otherwise generate on for nobody).
  const left = await leaveEarly(gw)
  check(
    'a client that leaves before the answer aborts upstream at once, reported as aborted (499)',
    left.upstreamAborted && left.status === 499 && left.outcome === 'aborted',
    JSON.stringify(left),
  )
  // SPEC §6: a client that stops reading is let go past the read timeout, and its answer then ends, not
  // as a whole one: on Bun the idle timeout closes the connection; on Deno, which has none to set, the
  // stream ends with the error line.
  const letGo = await unreadStream(gw)
  check(
    'a client that stops reading is let go: upstream aborted, reported, and its answer ends as a failed one',
    letGo.reported &&
      letGo.upstreamAborted &&
      !letGo.tail.includes('"done":true') &&
      (which === 'deno'
        ? letGo.tail.endsWith('the response is incomplete"}\n\r\n0\r\n\r\n')
        : letGo.closed && !letGo.tail.endsWith('0\r\n\r\n')),
    JSON.stringify({ ...letGo, tail: letGo.tail.slice(-120) }),
  )
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
  // SPEC §4.12: everything the gateway wrote here is its JSON log: a runtime's own warnings or a
  // stream's printed error would be lines no log shipper can parse.
  const stray = gw
    .output()
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('{'))
  check('writes nothing but JSON log lines', stray.length === 0, stray.slice(0, 5).join('\n'))
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
