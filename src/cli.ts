// The program: flags and environment → config → services → server, and the shutdown sequence.
// Runtime-neutral; each entry (main.ts, main.deno.ts) hands in its Runtime.
import { readFileSync } from 'node:fs'
import { createApp } from './app.ts'
import { type Config, ConfigError, describeVariables, flagsToEnv, loadConfig } from './config.ts'
import { GatewayError } from './errors.ts'
import { loadArgon2 } from './keys/argon2.ts'
import { COMMAND_OPTIONS, type Parsed, runKeysCommand, splitOptions } from './keys/cli.ts'
import { createLogger, type Logger } from './log.ts'
import type { Runtime } from './runtime/runtime.ts'
import { createServices, type ServiceOverrides } from './services.ts'
import { COMMIT, VERSION } from './version.ts'

const USAGE = `neuronetz-gateway ${VERSION}: an authenticated gateway in front of Ollama

Usage:
  neuronetz-gateway [--flag value ...]     run the gateway
  neuronetz-gateway keys create --name N [--scopes inference,models:write,admin] [--models 'llama3*,qwen3:*']
                    [--rpm N] [--tpm N] [--max-concurrency N] [--expires-in-days N | --expires-at ISO]
                    [--metadata JSON] [--json]
  neuronetz-gateway keys list [--name N] [--state active|revoked|expired] [--limit N] [--json]
  neuronetz-gateway keys revoke ID | keys rotate ID [--json]
  neuronetz-gateway migrate                apply database migrations and exit
  neuronetz-gateway healthcheck            exit 0 when the gateway on HOST/PORT answers /healthz (containers)
  neuronetz-gateway --version              print the version and commit
  neuronetz-gateway --help                 this text

Commands act on the configured store: DATABASE_URL (Postgres) or the SQLite file in DATA_DIR.

Every setting is an environment variable or the same-named flag (--port 8080 = PORT=8080):
`

export async function run(
  args: readonly string[],
  environment: Record<string, string | undefined>,
  runtime: Runtime,
  isTTY: boolean,
  overrides: ServiceOverrides = {},
): Promise<void> {
  // `keys <sub> ...` and `migrate` take their own options; the remaining flags are configuration.
  let argv = args
  let command: { name: string; parsed: Parsed } | undefined
  if (args[0] === 'keys' || args[0] === 'migrate' || args[0] === 'healthcheck') {
    const sub = args[0] === 'keys' ? (args[1] ?? '') : args[0]
    const parsed = splitOptions(args.slice(args[0] === 'keys' ? 2 : 1), COMMAND_OPTIONS[sub] ?? { values: [], switches: [] })
    command = { name: sub, parsed }
    argv = parsed.rest
  }
  const { env: flagEnv, rest, problems } = flagsToEnv(argv)
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${USAGE}${describeVariables()}\n`)
    return
  }
  if (rest.includes('--version')) {
    process.stdout.write(`neuronetz-gateway ${VERSION} (${COMMIT}) on ${runtime.name}\n`)
    return
  }
  if (rest.length > 0) problems.push(`unexpected argument${rest.length > 1 ? 's' : ''}: ${rest.join(' ')} (see --help)`)

  let config: Config
  try {
    if (problems.length > 0) throw new ConfigError(problems)
    config = loadConfig({ ...environment, ...flagEnv }, { isTTY })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`neuronetz-gateway: ${err.message}\n`)
    runtime.exit(2)
  }
  // The health check needs no argon2 (a container probes often).
  if (command?.name === 'healthcheck') runtime.exit(await healthcheck(config))
  try {
    await loadArgon2()
  } catch (err) {
    process.stderr.write(`neuronetz-gateway: ${(err as Error).message}\n`)
    runtime.exit(1)
  }
  if (command) {
    const log = createLogger({ level: 'warn', format: config.logFormat })
    try {
      runtime.exit(await runKeysCommand(command.name, command.parsed, config, log, (text) => process.stdout.write(text)))
    } catch (err) {
      const message = err instanceof GatewayError ? err.message : `cannot reach the store: ${(err as Error).message}`
      process.stderr.write(`neuronetz-gateway: ${message}\n`)
      log.flush()
      runtime.exit(1)
    }
  }
  await serve(config, runtime, createLogger({ level: config.logLevel, format: config.logFormat }), overrides)
}

/** For container HEALTHCHECKs on images without a shell or curl (SPEC §8.2). */
async function healthcheck(config: Config): Promise<number> {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const url = `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.port}/healthz`
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(3000),
      ...(config.tls ? { tls: { rejectUnauthorized: false } } : {}),
    } as RequestInit)
    return res.ok ? 0 : 1
  } catch {
    return 1
  }
}

async function serve(config: Config, runtime: Runtime, log: Logger, overrides: ServiceOverrides): Promise<void> {
  const services = createServices(config, log, runtime, overrides)
  await services.start()
  const app = createApp(services)
  let server: ReturnType<Runtime['serve']>
  try {
    server = runtime.serve({
      app,
      hostname: config.host,
      port: config.port,
      idleTimeoutS: config.idleTimeoutS,
      ...(config.tls ? { tls: { cert: readFileSync(config.tls.certFile, 'utf8'), key: readFileSync(config.tls.keyFile, 'utf8') } } : {}),
    })
  } catch (err) {
    log.error('cannot listen', { host: config.host, port: config.port, err })
    log.flush()
    await services.stop()
    runtime.exit(1)
  }
  log.info('listening', {
    url: `${config.tls ? 'https' : 'http'}://${config.host}:${server.port}`,
    port: server.port,
    version: VERSION,
    runtime: runtime.name,
    mode: config.databaseUrl ? 'cluster' : 'embedded',
    // SPEC §3.1: what holds the keys and audit log, and what holds the limits and caches, said apart
    // (half a cluster is allowed, with a warning).
    store: config.databaseUrl ? 'postgres' : 'sqlite',
    shared_state: config.redisUrl ? 'redis' : 'memory',
    backends: services.backends.all.map((b) => ({ name: b.name, health: b.health })),
  })

  // SPEC §4.1: stop accepting, give in-flight requests up to SHUTDOWN_GRACE_S, close everything, exit 0.
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal, in_flight: services.inflight.size, grace_s: config.shutdownGraceMs / 1000 })
    const graceEnds = performance.now() + config.shutdownGraceMs
    const stopped = server.stop(false)
    const drained = await services.inflight.drain(config.shutdownGraceMs)
    if (!drained) log.warn('grace period over; closing remaining connections', { in_flight: services.inflight.size })
    // A relayed answer is reported done when the server has taken its last bytes, which it may still be
    // writing: its own graceful stop ends once they are out (within what is left of the grace period).
    else await Promise.race([stopped, new Promise((wake) => setTimeout(wake, Math.max(0, graceEnds - performance.now())))])
    await server.stop(true)
    await services.stop()
    log.info('stopped', { drained })
    log.flush()
    runtime.exit(0)
  }
  runtime.onSignal('SIGTERM', () => void shutdown('SIGTERM'))
  runtime.onSignal('SIGINT', () => void shutdown('SIGINT'))
}
