// Starts the real gateway as a child process (`bun src/main.ts`, or a compiled binary) and reads its
// JSON log to learn the port. Tests talk to it over real HTTP.

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Subprocess, spawn } from 'bun'
import { newKey } from '../../src/keys/format.ts'

const ROOT = join(import.meta.dir, '..', '..')
export const BUN = process.execPath

export interface GatewayProcess {
  readonly url: string
  readonly port: number
  /** The BOOTSTRAP_ADMIN_KEY the process was started with. */
  readonly adminKey: string
  /** `{ authorization: 'Bearer <admin key>' }` */
  readonly auth: { authorization: string }
  readonly dataDir: string
  readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>
  /** Every log line so far, parsed. */
  readonly logs: Array<Record<string, unknown>>
  /** Raw stdout + stderr so far. */
  output(): string
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
}

export interface StartOptions {
  env?: Record<string, string>
  args?: string[]
  /** Command to run instead of `bun src/main.ts`. */
  command?: string[]
  cwd?: string
  /** Wait for the "listening" line (default true). */
  waitListening?: boolean
}

export async function startGateway(opts: StartOptions = {}): Promise<GatewayProcess> {
  const command = opts.command ?? [BUN, join(ROOT, 'src/main.ts')]
  const adminKey = opts.env?.BOOTSTRAP_ADMIN_KEY ?? newKey().token
  const dataDir = opts.env?.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'nnz-test-'))
  const proc = spawn([...command, ...(opts.args ?? [])], {
    cwd: opts.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      TMPDIR: process.env.TMPDIR ?? '/tmp',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      DATA_DIR: dataDir,
      BOOTSTRAP_ADMIN_KEY: adminKey,
      ...opts.env,
    },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const logs: Array<Record<string, unknown>> = []
  let raw = ''
  const listeners = new Set<() => void>()
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder()
    let carry = ''
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true })
      raw += text
      carry += text
      let nl = carry.indexOf('\n')
      while (nl !== -1) {
        const line = carry.slice(0, nl)
        carry = carry.slice(nl + 1)
        try {
          logs.push(JSON.parse(line))
        } catch {}
        nl = carry.indexOf('\n')
      }
      for (const l of listeners) l()
    }
  }
  void pump(proc.stdout)
  void pump(proc.stderr)

  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = logs.find(predicate)
        if (found) {
          listeners.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
      }
      const timer = setTimeout(() => {
        listeners.delete(check)
        reject(new Error(`gateway log line not seen within ${timeoutMs}ms; output:\n${raw}`))
      }, timeoutMs)
      listeners.add(check)
      proc.exited.then(() => setTimeout(check, 50))
      check()
    })

  let port = 0
  if (opts.waitListening !== false) {
    const listening = await Promise.race([
      waitForLog((l) => l.msg === 'listening', 15_000),
      proc.exited.then((code) => {
        throw new Error(`gateway exited with ${code} before listening; output:\n${raw}`)
      }),
    ])
    port = Number(listening.port)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    adminKey,
    auth: { authorization: `Bearer ${adminKey}` },
    dataDir,
    proc,
    logs,
    output: () => raw,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal)
      return await proc.exited
    },
    waitForLog,
  }
}
