// SPEC §3.2: every setting comes from the environment or the same-named CLI flag, is parsed once at
// startup into one frozen object, and a bad value stops startup with every problem listed at once.
import { type Static, Type as T, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parseTrustedProxies, TRUSTED_PROXIES_EXPECTED } from './client-address.ts'

const int = (def: number, min: number, max: number, description: string) =>
  T.Integer({ default: def, minimum: min, maximum: max, description, expected: `an integer from ${min} to ${max}` })
const num = (def: number, min: number, max: number, description: string) =>
  T.Number({ default: def, minimum: min, maximum: max, description, expected: `a number from ${min} to ${max}` })
const bool = (description: string) => T.Boolean({ default: false, description, expected: 'true or false' })
const url = (description: string, def?: string) =>
  T.String({ pattern: '^https?://[^\\s/]+', description, expected: 'an http:// or https:// URL', ...(def ? { default: def } : {}) })
const text = (description: string, def?: string) =>
  T.String({ description, expected: 'text', ...(def !== undefined ? { default: def } : {}) })
const secret = (description: string) => T.String({ description, secret: true, expected: 'text' })

/** The environment contract. Field names are the variable names so errors can name them. */
export const EnvSchema = T.Object({
  HOST: text('listen address', '0.0.0.0'),
  PORT: int(8080, 0, 65535, 'listen port (0 picks a free one)'),
  OLLAMA_BASE_URL: url('single backend (legacy form)', 'http://127.0.0.1:11434'),
  OLLAMA_BACKENDS: T.Optional(text('several backends: name=url,name=url or a JSON array of {name,url,token?,weight?}')),
  OLLAMA_AUTH_TOKEN: T.Optional(secret('token the gateway presents upstream')),
  OLLAMA_AUTH_HEADER: T.String({
    default: 'Authorization',
    pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
    description: 'header for that token',
    expected: 'an HTTP header name',
  }),
  OLLAMA_AUTH_SCHEME: text('prefix used when the header is Authorization', 'Bearer'),
  OLLAMA_CONNECT_TIMEOUT_S: num(5, 0.1, 300, 'connect timeout to a backend'),
  OLLAMA_READ_TIMEOUT_S: num(600, 1, 86400, 'longest wait for headers and between two chunks, and for a client to read on'),
  OLLAMA_MAX_CONNECTIONS: int(64, 1, 100000, 'concurrent upstream requests per backend'),
  DATABASE_URL: T.Optional(
    T.String({
      pattern: '^postgres(ql)?://',
      secret: true,
      description: 'Postgres; unset = embedded SQLite',
      expected: 'a postgres:// URL',
    }),
  ),
  REDIS_URL: T.Optional(
    T.String({ pattern: '^rediss?://', secret: true, description: 'Redis; unset = in-process', expected: 'a redis:// or rediss:// URL' }),
  ),
  DATA_DIR: text('embedded database and audit spill files', './data'),
  AUDIT_BUFFER_SIZE: int(10000, 1, 10_000_000, 'audit events held in memory before spilling to disk'),
  DISCOVERY_INTERVAL_S: num(15, 0.1, 86400, 'model discovery poll period'),
  KEY_CACHE_TTL_S: num(30, 0, 86400, 'how old a cached key record may get before it is read again from the store (0: no cache)'),
  ARGON2_MEMORY_KIB: int(19456, 1024, 4_194_304, 'argon2id memory cost for new keys'),
  ARGON2_TIME_COST: int(2, 1, 100, 'argon2id time cost for new keys'),
  ARGON2_PARALLELISM: int(1, 1, 64, 'argon2id parallelism for new keys'),
  BOOTSTRAP_ADMIN_KEY: T.Optional(
    T.String({
      pattern: '^nnz_[0-9A-Za-z]{12}_[0-9A-Za-z]{20,}$',
      secret: true,
      description: 'ensures this admin key exists',
      expected: 'a key of the form nnz_<12 base62>_<secret>',
    }),
  ),
  CORS_ORIGINS: T.Optional(text('allowed browser origins, comma-separated, or *')),
  TRUSTED_PROXIES: T.Optional(text('load balancers whose X-Forwarded-For names the client: addresses, CIDR ranges, loopback or private')),
  MAX_BODY_MB: num(100, 0.001, 100_000, 'request body limit for JSON endpoints'),
  SHUTDOWN_GRACE_S: num(30, 0, 3600, 'time in-flight requests get on SIGTERM'),
  IDLE_TIMEOUT_S: int(75, 0, 255, 'close a client connection idle this long between requests (0: never)'),
  LOG_LEVEL: T.Union([T.Literal('debug'), T.Literal('info'), T.Literal('warn'), T.Literal('error')], {
    default: 'info',
    description: 'log level',
    expected: 'debug, info, warn or error',
  }),
  LOG_FORMAT: T.Optional(
    T.Union([T.Literal('json'), T.Literal('pretty')], {
      description: 'log format (default json, pretty on a TTY)',
      expected: 'json or pretty',
    }),
  ),
  TLS_CERT_FILE: T.Optional(text('serve HTTPS with this certificate (PEM)')),
  TLS_KEY_FILE: T.Optional(text('and this private key (PEM)')),
  AUDIT_RETENTION_DAYS: num(90, 0, 36500, 'audit events older than this are pruned (0 keeps all)'),
  RATE_LIMIT_FAIL_CLOSED: bool('reject instead of admit while Redis is unreachable'),
  METRICS_PUBLIC: bool('serve /metrics without a key'),
})
export type Env = Static<typeof EnvSchema>

export interface BackendConfig {
  readonly name: string
  readonly url: string
  readonly token?: string
  readonly weight: number
}

export interface Config {
  readonly host: string
  readonly port: number
  readonly backends: readonly BackendConfig[]
  readonly upstreamToken?: string
  readonly upstreamAuthHeader: string
  readonly upstreamAuthScheme: string
  readonly connectTimeoutMs: number
  readonly readTimeoutMs: number
  readonly maxConnections: number
  readonly databaseUrl?: string
  readonly redisUrl?: string
  readonly dataDir: string
  readonly auditBufferSize: number
  readonly discoveryIntervalMs: number
  readonly keyCacheTtlMs: number
  readonly argon2: { readonly memoryCost: number; readonly timeCost: number; readonly parallelism: number }
  readonly bootstrapAdminKey?: string
  readonly corsOrigins: readonly string[]
  /** Ranges whose X-Forwarded-For is believed (client-address.ts); empty: the peer is the client. */
  readonly trustedProxies: readonly string[]
  readonly maxBodyBytes: number
  readonly shutdownGraceMs: number
  /** SPEC §6: a keep-alive connection with no request in flight is closed after this long (0: never). */
  readonly idleTimeoutS: number
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error'
  readonly logFormat: 'json' | 'pretty'
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
  readonly auditRetentionDays: number
  readonly rateLimitFailClosed: boolean
  readonly metricsPublic: boolean
  /** Settings that look like a mistake without being invalid: logged as warnings at startup. */
  readonly notices?: readonly string[]
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    )
    this.name = 'ConfigError'
  }
}

const properties = EnvSchema.properties as Record<string, TSchema>
export const ENV_NAMES = Object.keys(properties)

/** `--ollama-base-url x` and `--ollama-base-url=x` become `OLLAMA_BASE_URL=x`; bare `--flag` means true. */
export function flagsToEnv(args: readonly string[]): { env: Record<string, string>; rest: string[]; problems: string[] } {
  const env: Record<string, string> = {}
  const rest: string[] = []
  const problems: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (!arg.startsWith('--') || arg === '--help' || arg === '--version') {
      rest.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    const name = flag.toUpperCase().replaceAll('-', '_')
    if (!(name in properties)) {
      problems.push(`--${flag}: unknown flag (see --help)`)
      continue
    }
    if (eq !== -1) env[name] = arg.slice(eq + 1)
    else if (properties[name]?.type === 'boolean') env[name] = 'true'
    else if (i + 1 < args.length) env[name] = args[++i] as string
    else problems.push(`--${flag}: needs a value`)
  }
  return { env, rest, problems }
}

function describeValue(name: string, raw: unknown): string {
  if (raw === undefined) return `${name} (missing)`
  return properties[name]?.secret ? `${name}=<redacted>` : `${name}=${JSON.stringify(raw)}`
}

/** Reads the known variables, ignoring empty strings (an empty variable means "unset"). */
function pickEnv(source: Record<string, string | undefined>): Record<string, unknown> {
  const picked: Record<string, unknown> = {}
  for (const name of ENV_NAMES) {
    const raw = source[name]
    if (raw !== undefined && raw.trim() !== '') picked[name] = raw.trim()
  }
  return picked
}

const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  on: true,
  false: false,
  '0': false,
  no: false,
  off: false,
}

function coerce(picked: Record<string, unknown>): Record<string, unknown> {
  const out = { ...picked }
  for (const [name, raw] of Object.entries(picked)) {
    const schema = properties[name] as TSchema & { type?: string }
    if (schema.type === 'boolean') out[name] = BOOLEAN_WORDS[String(raw).toLowerCase()] ?? raw
    else if ((schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(String(raw))) out[name] = Number(raw)
  }
  return out
}

export function parseBackends(env: Env, problems: string[]): BackendConfig[] {
  const raw = env.OLLAMA_BACKENDS
  if (raw === undefined) return [{ name: 'default', url: stripSlash(env.OLLAMA_BASE_URL), weight: 1 }]
  const expected = 'name=url,name=url or a JSON array of {name,url,token?,weight?}'
  let entries: unknown[]
  if (raw.startsWith('[')) {
    try {
      entries = JSON.parse(raw)
    } catch {
      problems.push(`OLLAMA_BACKENDS: not valid JSON (expected ${expected})`)
      return []
    }
  } else {
    entries = raw.split(',').map((part) => {
      const eq = part.indexOf('=')
      return eq === -1 ? { name: '', url: part.trim() } : { name: part.slice(0, eq).trim(), url: part.slice(eq + 1).trim() }
    })
  }
  const backends: BackendConfig[] = []
  const seen = new Set<string>()
  entries.forEach((entry, i) => {
    const e = entry as Partial<BackendConfig>
    const where = `OLLAMA_BACKENDS entry ${i + 1}`
    if (typeof e?.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(e.name)) {
      problems.push(`${where}: name ${JSON.stringify(e?.name ?? '')} must be 1-64 letters, digits, '.', '_' or '-' (expected ${expected})`)
      return
    }
    if (seen.has(e.name)) problems.push(`${where}: name '${e.name}' is used twice`)
    seen.add(e.name)
    if (typeof e.url !== 'string' || !/^https?:\/\/[^\s/]+/.test(e.url)) {
      problems.push(`${where} (${e.name}): url ${JSON.stringify(e.url ?? '')} is not an http:// or https:// URL`)
      return
    }
    const weight = e.weight ?? 1
    if (typeof weight !== 'number' || !(weight > 0) || weight > 1000) {
      problems.push(`${where} (${e.name}): weight must be a number above 0 and at most 1000`)
      return
    }
    if (e.token !== undefined && typeof e.token !== 'string') problems.push(`${where} (${e.name}): token must be a string`)
    const backend: BackendConfig = { name: e.name, url: stripSlash(e.url), weight }
    backends.push(e.token ? { ...backend, token: e.token } : backend)
  })
  if (entries.length === 0) problems.push(`OLLAMA_BACKENDS: no backends listed (expected ${expected})`)
  return backends
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/**
 * Parses the environment (flags already merged in). Throws one ConfigError listing every bad
 * variable, its problem and the expected form; secrets are never echoed.
 */
export function loadConfig(source: Record<string, string | undefined>, opts: { isTTY?: boolean } = {}): Config {
  const raw = pickEnv(source)
  const picked = coerce(raw)
  const withDefaults = Value.Default(EnvSchema, structuredClone(picked)) as Record<string, unknown>
  const problems: string[] = []
  const reported = new Set<string>()
  for (const error of Value.Errors(EnvSchema, withDefaults)) {
    const name = error.path.split('/')[1] ?? '?'
    if (reported.has(name)) continue
    reported.add(name)
    const expected = (properties[name] as { expected?: string } | undefined)?.expected ?? error.message
    problems.push(`${describeValue(name, raw[name])}: expected ${expected}`)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  const env = withDefaults as Env
  const backends = parseBackends(env, problems)
  const trusted = parseTrustedProxies(env.TRUSTED_PROXIES ?? '')
  if ('bad' in trusted) problems.push(`TRUSTED_PROXIES entry ${JSON.stringify(trusted.bad)}: expected ${TRUSTED_PROXIES_EXPECTED}`)
  if ((env.TLS_CERT_FILE === undefined) !== (env.TLS_KEY_FILE === undefined)) {
    problems.push('TLS_CERT_FILE and TLS_KEY_FILE: set both or neither')
  }
  if (problems.length > 0) throw new ConfigError(problems)
  const notices: string[] = []
  // OLLAMA_HOST is what Ollama's own clients and server read; an operator may set it for the gateway.
  if (source.OLLAMA_HOST && raw.OLLAMA_BASE_URL === undefined && raw.OLLAMA_BACKENDS === undefined) {
    notices.push(
      `OLLAMA_HOST is set but the gateway does not read it; its backend is OLLAMA_BASE_URL (default ${env.OLLAMA_BASE_URL}) or OLLAMA_BACKENDS`,
    )
  }

  const config: Config = {
    host: env.HOST,
    port: env.PORT,
    backends,
    upstreamAuthHeader: env.OLLAMA_AUTH_HEADER,
    upstreamAuthScheme: env.OLLAMA_AUTH_SCHEME,
    connectTimeoutMs: env.OLLAMA_CONNECT_TIMEOUT_S * 1000,
    readTimeoutMs: env.OLLAMA_READ_TIMEOUT_S * 1000,
    maxConnections: env.OLLAMA_MAX_CONNECTIONS,
    dataDir: env.DATA_DIR,
    auditBufferSize: env.AUDIT_BUFFER_SIZE,
    discoveryIntervalMs: env.DISCOVERY_INTERVAL_S * 1000,
    keyCacheTtlMs: env.KEY_CACHE_TTL_S * 1000,
    argon2: { memoryCost: env.ARGON2_MEMORY_KIB, timeCost: env.ARGON2_TIME_COST, parallelism: env.ARGON2_PARALLELISM },
    corsOrigins: env.CORS_ORIGINS
      ? env.CORS_ORIGINS.split(',')
          .map((o) => o.trim())
          .filter(Boolean)
      : [],
    trustedProxies: 'ranges' in trusted ? trusted.ranges : [],
    maxBodyBytes: Math.round(env.MAX_BODY_MB * 1024 * 1024),
    shutdownGraceMs: env.SHUTDOWN_GRACE_S * 1000,
    idleTimeoutS: env.IDLE_TIMEOUT_S,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT ?? (opts.isTTY ? 'pretty' : 'json'),
    auditRetentionDays: env.AUDIT_RETENTION_DAYS,
    rateLimitFailClosed: env.RATE_LIMIT_FAIL_CLOSED,
    metricsPublic: env.METRICS_PUBLIC,
    ...(notices.length > 0 ? { notices } : {}),
    ...(env.OLLAMA_AUTH_TOKEN ? { upstreamToken: env.OLLAMA_AUTH_TOKEN } : {}),
    ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}),
    ...(env.REDIS_URL ? { redisUrl: env.REDIS_URL } : {}),
    ...(env.BOOTSTRAP_ADMIN_KEY ? { bootstrapAdminKey: env.BOOTSTRAP_ADMIN_KEY } : {}),
    ...(env.TLS_CERT_FILE && env.TLS_KEY_FILE ? { tls: { certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE } } : {}),
  }
  return deepFreeze(config)
}

function deepFreeze<V>(value: V): V {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/** The configuration table for --help, generated from the schema so it cannot drift. */
export function describeVariables(): string {
  return ENV_NAMES.map((name) => {
    const s = properties[name] as { description?: string; default?: unknown }
    const flag = `--${name.toLowerCase().replaceAll('_', '-')}`
    const def = s.default === undefined ? '' : ` (default ${JSON.stringify(s.default)})`
    return `  ${name.padEnd(26)} ${flag.padEnd(28)} ${s.description ?? ''}${def}`
  }).join('\n')
}
