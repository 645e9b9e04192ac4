// SPEC §3.2: one typed frozen config; every bad variable is reported at once with its expected form;
// secrets are never echoed.
import { describe, expect, test } from 'bun:test'
import { ConfigError, flagsToEnv, loadConfig } from '../src/config.ts'
import { startGateway } from './helpers/gateway.ts'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
  return []
}

describe('defaults', () => {
  test('no configuration at all is a valid embedded gateway on :8080 proxying 127.0.0.1:11434', () => {
    const c = loadConfig({})
    expect(c.host).toBe('0.0.0.0')
    expect(c.port).toBe(8080)
    expect(c.backends).toEqual([{ name: 'default', url: 'http://127.0.0.1:11434', weight: 1 }])
    expect(c.readTimeoutMs).toBe(600_000)
    expect(c.maxBodyBytes).toBe(100 * 1024 * 1024)
    expect(c.databaseUrl).toBeUndefined()
    expect(c.logFormat).toBe('json')
    expect(loadConfig({}, { isTTY: true }).logFormat).toBe('pretty')
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.backends[0])).toBe(true)
  })

  test('values are converted and an empty variable means unset', () => {
    const c = loadConfig({
      PORT: '9000',
      METRICS_PUBLIC: 'yes',
      OLLAMA_READ_TIMEOUT_S: '2.5',
      DATABASE_URL: '',
      CORS_ORIGINS: 'https://a.example, https://b.example',
    })
    expect(c.port).toBe(9000)
    expect(c.metricsPublic).toBe(true)
    expect(c.readTimeoutMs).toBe(2500)
    expect(c.databaseUrl).toBeUndefined()
    expect(c.corsOrigins).toEqual(['https://a.example', 'https://b.example'])
  })
})

describe('every bad value is named with its expected form', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT="eighty": expected an integer from 0 to 65535'],
    [{ PORT: '70000' }, 'PORT="70000": expected an integer from 0 to 65535'],
    [{ OLLAMA_BASE_URL: 'localhost:11434' }, 'OLLAMA_BASE_URL="localhost:11434": expected an http:// or https:// URL'],
    [{ OLLAMA_AUTH_HEADER: 'bad header' }, 'OLLAMA_AUTH_HEADER="bad header": expected an HTTP header name'],
    [{ OLLAMA_CONNECT_TIMEOUT_S: '0' }, 'OLLAMA_CONNECT_TIMEOUT_S="0": expected a number from 0.1 to 300'],
    [{ OLLAMA_READ_TIMEOUT_S: 'forever' }, 'OLLAMA_READ_TIMEOUT_S="forever": expected a number from 1 to 86400'],
    [{ OLLAMA_MAX_CONNECTIONS: '0' }, 'OLLAMA_MAX_CONNECTIONS="0": expected an integer from 1 to 100000'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL=<redacted>: expected a postgres:// URL'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL=<redacted>: expected a redis:// or rediss:// URL'],
    [{ AUDIT_BUFFER_SIZE: '-1' }, 'AUDIT_BUFFER_SIZE="-1": expected an integer from 1 to 10000000'],
    [{ DISCOVERY_INTERVAL_S: 'often' }, 'DISCOVERY_INTERVAL_S="often": expected a number from 0.1 to 86400'],
    [{ KEY_CACHE_TTL_S: '-5' }, 'KEY_CACHE_TTL_S="-5": expected a number from 0 to 86400'],
    [{ ARGON2_MEMORY_KIB: '8' }, 'ARGON2_MEMORY_KIB="8": expected an integer from 1024 to 4194304'],
    [{ ARGON2_TIME_COST: '0' }, 'ARGON2_TIME_COST="0": expected an integer from 1 to 100'],
    [{ ARGON2_PARALLELISM: '1.5' }, 'ARGON2_PARALLELISM="1.5": expected an integer from 1 to 64'],
    [{ BOOTSTRAP_ADMIN_KEY: 'letmein' }, 'BOOTSTRAP_ADMIN_KEY=<redacted>: expected a key of the form nnz_<12 base62>_<secret>'],
    [{ MAX_BODY_MB: '0' }, 'MAX_BODY_MB="0": expected a number from 0.001 to 100000'],
    [{ SHUTDOWN_GRACE_S: 'soon' }, 'SHUTDOWN_GRACE_S="soon": expected a number from 0 to 3600'],
    [{ IDLE_TIMEOUT_S: '600' }, 'IDLE_TIMEOUT_S="600": expected an integer from 0 to 255'],
    [
      { TRUSTED_PROXIES: '10.0.0.0/8, lb.internal' },
      'TRUSTED_PROXIES entry "lb.internal": expected comma-separated IP addresses or CIDR ranges (10.0.0.0/8, fd00::/8), or loopback, private',
    ],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL="verbose": expected debug, info, warn or error'],
    [{ LOG_FORMAT: 'xml' }, 'LOG_FORMAT="xml": expected json or pretty'],
    [{ AUDIT_RETENTION_DAYS: '-1' }, 'AUDIT_RETENTION_DAYS="-1": expected a number from 0 to 36500'],
    [{ RATE_LIMIT_FAIL_CLOSED: 'maybe' }, 'RATE_LIMIT_FAIL_CLOSED="maybe": expected true or false'],
    [{ METRICS_PUBLIC: '2' }, 'METRICS_PUBLIC="2": expected true or false'],
    [{ TLS_CERT_FILE: '/tmp/cert.pem' }, 'TLS_CERT_FILE and TLS_KEY_FILE: set both or neither'],
    [{ OLLAMA_BACKENDS: 'a=http://h1:11434,a=http://h2:11434' }, "OLLAMA_BACKENDS entry 2: name 'a' is used twice"],
    [{ OLLAMA_BACKENDS: 'gpu1=ftp://h1' }, 'OLLAMA_BACKENDS entry 1 (gpu1): url "ftp://h1" is not an http:// or https:// URL'],
    [{ OLLAMA_BACKENDS: '[{"name":"x"' }, 'OLLAMA_BACKENDS: not valid JSON'],
    [{ OLLAMA_BACKENDS: '[{"name":"x","url":"http://h","weight":0}]' }, 'OLLAMA_BACKENDS entry 1 (x): weight must be a number above 0'],
    [{ OLLAMA_BACKENDS: '[]' }, 'OLLAMA_BACKENDS: no backends listed'],
  ]
  for (const [env, message] of cases) {
    test(`${Object.keys(env).join(', ')} → ${message}`, () => {
      const problems = problemsOf(env)
      expect(problems.some((p) => p.startsWith(message))).toBe(true)
    })
  }

  test('all problems are reported together, secrets never echoed', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://user:hunter2@db', MAX_BODY_MB: '-1' })
    expect(problems).toHaveLength(4)
    expect(problems.join('\n')).not.toContain('hunter2')
  })
})

describe('backends and flags', () => {
  test("OLLAMA_HOST (Ollama's own variable) is not read, and a startup notice says so unless a backend is set", () => {
    expect(loadConfig({ OLLAMA_HOST: 'http://gpu:11434' }).notices).toEqual([
      'OLLAMA_HOST is set but the gateway does not read it; its backend is OLLAMA_BASE_URL (default http://127.0.0.1:11434) or OLLAMA_BACKENDS',
    ])
    expect(loadConfig({ OLLAMA_HOST: 'http://gpu:11434' }).backends[0]?.url).toBe('http://127.0.0.1:11434')
    expect(loadConfig({ OLLAMA_HOST: '0.0.0.0', OLLAMA_BASE_URL: 'http://gpu:11434' }).notices).toBeUndefined()
    expect(loadConfig({}).notices).toBeUndefined()
  })

  test('OLLAMA_BACKENDS in both forms overrides OLLAMA_BASE_URL', () => {
    expect(
      loadConfig({ OLLAMA_BASE_URL: 'http://ignored:1', OLLAMA_BACKENDS: 'gpu1=http://h1:11434/, gpu2=http://h2:11434' }).backends,
    ).toEqual([
      { name: 'gpu1', url: 'http://h1:11434', weight: 1 },
      { name: 'gpu2', url: 'http://h2:11434', weight: 1 },
    ])
    expect(loadConfig({ OLLAMA_BACKENDS: '[{"name":"a","url":"https://h","token":"t","weight":2}]' }).backends).toEqual([
      { name: 'a', url: 'https://h', token: 't', weight: 2 },
    ])
  })

  test('CLI flags map to variables, with or without =, and bare booleans', () => {
    const { env, rest, problems } = flagsToEnv(['--port', '9001', '--ollama-base-url=http://x:1', '--metrics-public', '--help'])
    expect(env).toEqual({ PORT: '9001', OLLAMA_BASE_URL: 'http://x:1', METRICS_PUBLIC: 'true' })
    expect(rest).toEqual(['--help'])
    expect(problems).toEqual([])
    expect(flagsToEnv(['--no-such-flag', '1']).problems[0]).toBe('--no-such-flag: unknown flag (see --help)')
    expect(flagsToEnv(['--port']).problems[0]).toBe('--port: needs a value')
  })
})

describe('the process', () => {
  test('a bad configuration stops startup with exit 2 and one message listing every problem', async () => {
    const gw = await startGateway({ env: { PORT: 'abc', LOG_LEVEL: 'loud', REDIS_URL: 'nope://secret' }, waitListening: false })
    const code = await gw.proc.exited
    expect(code).toBe(2)
    const out = gw.output()
    expect(out).toContain('Invalid configuration (3 problems)')
    expect(out).toContain('PORT="abc": expected an integer from 0 to 65535')
    expect(out).toContain('LOG_LEVEL="loud"')
    expect(out).not.toContain('secret')
  })

  test('flags override the environment; --version and --help answer and exit 0', async () => {
    const version = await startGateway({ args: ['--version'], waitListening: false })
    expect(await version.proc.exited).toBe(0)
    expect(version.output()).toMatch(/^neuronetz-gateway \d+\.\d+\.\d+ \(\w+\) on bun\n$/)
    const help = await startGateway({ args: ['--help'], waitListening: false })
    expect(await help.proc.exited).toBe(0)
    expect(help.output()).toContain('OLLAMA_READ_TIMEOUT_S')
    expect(help.output()).toContain('--ollama-read-timeout-s')
    const bad = await startGateway({ args: ['--port', 'x'], env: { PORT: '8080' }, waitListening: false })
    expect(await bad.proc.exited).toBe(2)
    expect(bad.output()).toContain('PORT="x"')
  })
})
