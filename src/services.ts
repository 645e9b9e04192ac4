// Everything a running gateway holds open, built from the config in one place. `start()` opens what
// requests need before the server accepts connections; `stop()` closes it after the last response
// (SPEC §4.1). Elysia does not await onStart/onStop (STACK), so cli.ts drives both explicitly.
import type { Redis } from 'ioredis'
import { AuditWriter } from './audit/writer.ts'
import { DiscoveryPoller } from './backends/poller.ts'
import { BackendRegistry } from './backends/registry.ts'
import { clientAddressOf } from './client-address.ts'
import type { Config } from './config.ts'
import { Authenticator, type KeyAuthenticator, LastUsed } from './keys/authenticator.ts'
import { KeyCache } from './keys/cache.ts'
import { Hasher } from './keys/hasher.ts'
import { KeyService } from './keys/service.ts'
import { FailureThrottle } from './keys/throttle.ts'
import type { RateLimiter } from './limits/limiter.ts'
import { MemoryLimiter } from './limits/memory.ts'
import { RedisLimiter } from './limits/redis.ts'
import type { Logger } from './log.ts'
import { createMetrics, type Metrics } from './metrics/metrics.ts'
import { registerProcessMetrics } from './metrics/process.ts'
import { createProxy, type ProxyHandler, WHOLE_ANSWER_MAX } from './proxy/service.ts'
import { InFlight } from './runtime/inflight.ts'
import type { Runtime } from './runtime/runtime.ts'
import { connectRedis, openRedis } from './shared/redis.ts'
import { PostgresStore } from './store/postgres.ts'
import { SqliteStore } from './store/sqlite.ts'
import type { Store } from './store/store.ts'
import { COMMIT, VERSION } from './version.ts'

export interface Services {
  readonly config: Config
  readonly log: Logger
  readonly runtime: Runtime
  /** The client's address: the peer, or behind TRUSTED_PROXIES the one they forward (client-address.ts). */
  readonly clientIp: (request: Request) => string
  readonly metrics: Metrics
  readonly store: Store
  readonly redis?: Redis
  readonly keyCache: KeyCache
  readonly auth: KeyAuthenticator
  readonly keys: KeyService
  readonly limiter: RateLimiter
  readonly audit: AuditWriter
  readonly backends: BackendRegistry
  readonly discovery: DiscoveryPoller
  readonly inflight: InFlight
  readonly proxy: ProxyHandler
  readonly startedAt: number
  /** Whether the store has been migrated and answered since startup. */
  storeReady(): boolean
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * The embedded store's audit thread. The URL is made here, in a module at the root of src/: in the
 * compiled binary every module's import.meta.url is the entry's, so a path relative to src/ resolves
 * there and from source alike (scripts/build.ts embeds the worker as a second entry point).
 */
export const SQLITE_AUDIT_THREAD = new URL('./store/sqlite-audit.worker.ts', import.meta.url).href

/**
 * The store for the configured mode (also used by the CLI, which needs nothing else). The server's
 * embedded store writes audit batches on a thread of its own (store/sqlite-audit.ts); the CLI's does not.
 */
export function openStore(config: Config, log: Logger, server = false): Store {
  if (config.databaseUrl) return new PostgresStore(config.databaseUrl, log)
  return new SqliteStore(config.dataDir, server ? { auditThread: SQLITE_AUDIT_THREAD, log } : {})
}

export function createHasher(config: Config): Hasher {
  return new Hasher({ ...config.argon2, concurrency: 2, maxQueue: 256 })
}

/** Replacements for parts of the request path; only the benchmark uses these (bench/gateway-*.ts). */
export interface ServiceOverrides {
  readonly auth?: KeyAuthenticator
  /** Where the audit writer's batches go instead of the store. */
  readonly auditStore?: Pick<Store, 'insertAudit'>
}

export function createServices(config: Config, log: Logger, runtime: Runtime, overrides: ServiceOverrides = {}): Services {
  const metrics = createMetrics()
  const store = openStore(config, log, true)
  const redis = config.redisUrl ? openRedis(config.redisUrl, log) : undefined
  const keyCache = new KeyCache(config.keyCacheTtlMs, redis)
  const hasher = createHasher(config)
  const lastUsed = new LastUsed()
  const auth: KeyAuthenticator =
    overrides.auth ??
    new Authenticator({
      store,
      cache: keyCache,
      hasher,
      // SPEC §4.2: 20 failed verifications per address per minute, then the slow path is refused.
      throttle: new FailureThrottle(20, 60_000),
      metrics,
      onUse: (id, at) => lastUsed.touch(id, at),
      shared: redis !== undefined,
    })
  const keys = new KeyService(store, hasher, (id) => keyCache.evict(id))
  const backends = new BackendRegistry(config)
  const discovery = new DiscoveryPoller(backends, log, {
    intervalMs: config.discoveryIntervalMs,
    probeTimeoutMs: config.connectTimeoutMs,
    ...(redis ? { redis } : {}),
  })
  const inflight = new InFlight()
  const limiter: RateLimiter = redis
    ? new RedisLimiter(redis, metrics, { failClosed: config.rateLimitFailClosed, log })
    : new MemoryLimiter()
  const audit = new AuditWriter(overrides.auditStore ?? store, log, metrics, {
    dataDir: config.dataDir,
    bufferSize: config.auditBufferSize,
    // SQLite: batches of 100, on the store's audit thread (or, without one, on the event loop with a
    // turn of the loop between them).
    batchSize: store.kind === 'sqlite' ? 100 : 500,
    // A flush every 50 ms. Postgres: rather than 250, it keeps each batch, and the database's burst of
    // work on the same cores, small (p99 at 2k req/s about 1 ms lower in an A/B run, bench/RESULTS.md).
    // SQLite: with the inserts on the audit thread, 50 ms cost no more than 250 at 2k req/s (median p99
    // 2.85 against 2.86 ms, four rounds each), and a crash loses at most 50 ms of events, not 250.
    intervalMs: 50,
  })
  // SPEC §4.12: gauges read at scrape time.
  const perBackend = (value: (b: (typeof backends.all)[number]) => number) => () =>
    backends.all.map((b) => [{ backend: b.name }, value(b)] as [Record<string, string>, number])
  metrics.registry.gauge(
    'nnz_backend_up',
    'Whether the last probe of the backend succeeded (1) or not (0).',
    perBackend((b) => (b.health === 'up' ? 1 : 0)),
  )
  metrics.registry.gauge(
    'nnz_backend_in_flight',
    'Requests in flight to the backend.',
    perBackend((b) => b.inFlight),
  )
  metrics.registry.gauge(
    'nnz_backend_queued',
    'Requests waiting for a slot on the backend.',
    perBackend((b) => b.admission.waiting),
  )
  metrics.registry.gauge(
    'nnz_backend_breaker_open',
    'Circuit breaker state: 0 closed, 1 open, 0.5 half-open.',
    perBackend((b) => ({ closed: 0, open: 1, half_open: 0.5 })[b.breaker.state]),
  )
  metrics.registry.gauge(
    'nnz_backend_models',
    'Models the backend has.',
    perBackend((b) => b.models.size),
  )
  if (limiter instanceof RedisLimiter)
    metrics.registry.gauge(
      'nnz_rate_limit_clock_offset_seconds',
      "Redis's clock minus this replica's, as last read; rate-limit windows and leases follow Redis's clock.",
      () => [[{}, limiter.clockOffsetMs / 1000]],
    )
  metrics.registry.gauge('nnz_audit_buffered', 'Audit events held in memory, waiting for the store.', () => [[{}, audit.buffered]])
  metrics.registry.gauge('nnz_key_cache_entries', 'Verified keys held in the in-process cache.', () => [[{}, keyCache.size]])
  metrics.registry.gauge('nnz_requests_in_flight', 'Proxied requests whose answers are not yet complete.', () => [[{}, inflight.size]])
  registerProcessMetrics(metrics.registry, { version: VERSION, commit: COMMIT, runtime: runtime.name })
  // SPEC §7: answers from plain-http backends come through the runtime's own client, where it has one.
  const client = runtime.httpClient?.({ maxBodyBytes: WHOLE_ANSWER_MAX, maxIdle: 256 })
  const proxy = createProxy({
    config,
    backends,
    discovery,
    log,
    inflight,
    auth,
    metrics,
    limiter,
    audit,
    clientSignal: runtime.clientSignal,
    ...(runtime.holdOpen ? { holdOpen: runtime.holdOpen } : {}),
    ...(client ? { client } : {}),
  })

  let ready = false
  let stopped = false
  const timers: Array<ReturnType<typeof setInterval>> = []
  const stoppers: Array<() => Promise<void>> = []

  // SPEC §4.1: a dependency that fails to connect is logged and retried in the background.
  const openStoreWithRetry = async (attempt = 1): Promise<void> => {
    try {
      await store.migrate()
      ready = true
      if (attempt > 1) log.info('store up', { store: store.kind })
      await afterStoreUp()
    } catch (err) {
      if (stopped) return
      if (attempt === 1) log.error('store unreachable; retrying in the background', { store: store.kind, err })
      const delay = Math.min(attempt * 1000, 10_000)
      setTimeout(() => void openStoreWithRetry(attempt + 1), delay)
    }
  }

  const afterStoreUp = async () => {
    if (config.bootstrapAdminKey) {
      const outcome = await keys.ensureBootstrap(config.bootstrapAdminKey)
      if (outcome === 'revoked') log.warn('BOOTSTRAP_ADMIN_KEY names a revoked key; it stays revoked')
      else log.info('bootstrap admin key', { outcome })
    } else if ((await store.countKeys()) === 0) {
      log.warn(
        'no API keys yet: create the first admin key with `neuronetz-gateway keys create --name admin --scopes admin` (from source: `npm start -- keys create --name admin --scopes admin`)',
      )
    }
    // SPEC §4.5: changes made elsewhere evict here.
    const unwatch = await store.watchKeys(
      (id) => {
        metrics.revocationsReceived.inc()
        void keyCache.evict(id)
      },
      () => keyCache.expireLocal(),
    )
    stoppers.push(unwatch)
  }

  return {
    config,
    log,
    runtime,
    clientIp: clientAddressOf(runtime.clientIp, config.trustedProxies),
    metrics,
    store,
    ...(redis ? { redis } : {}),
    keyCache,
    auth,
    keys,
    limiter,
    audit,
    backends,
    discovery,
    inflight,
    proxy,
    startedAt: Date.now(),
    storeReady: () => ready,
    async start() {
      for (const notice of config.notices ?? []) log.warn(notice)
      if (config.databaseUrl && !redis) log.warn('DATABASE_URL without REDIS_URL: rate limits and key caches are per replica')
      if (redis && !config.databaseUrl)
        log.warn(
          `REDIS_URL without DATABASE_URL: keys and the audit log stay in this replica's SQLite file in DATA_DIR; set DATABASE_URL to share them`,
        )
      const redisUp = redis ? connectRedis(redis, 3000) : Promise.resolve(true)
      await Promise.all([openStoreWithRetry(), redisUp, discovery.start(redisUp)])
      if (redis && redis.status !== 'ready') log.warn('redis unreachable; retrying in the background', { url: 'REDIS_URL' })
      const flush = setInterval(() => void lastUsed.flush(store), 5000)
      ;(flush as { unref?: () => void }).unref?.()
      timers.push(flush)
      audit.start()
      // SPEC §4.10: prune old audit events in the background, hourly and once soon after start.
      const prune = async () => {
        if (!ready || config.auditRetentionDays <= 0) return
        const removed = await store.pruneAudit(Date.now() - config.auditRetentionDays * 86_400_000).catch(() => 0)
        if (removed > 0) log.info('audit events pruned', { removed, retention_days: config.auditRetentionDays })
      }
      const pruner = setInterval(() => void prune(), 3_600_000)
      ;(pruner as { unref?: () => void }).unref?.()
      timers.push(pruner)
      const firstPrune = setTimeout(() => void prune(), 10_000)
      ;(firstPrune as { unref?: () => void }).unref?.()
    },
    async stop() {
      stopped = true
      discovery.stop()
      for (const t of timers) clearInterval(t)
      await lastUsed.flush(store)
      // SPEC §4.1: flush the audit writer (spilling what the store will not take) before closing it.
      await audit.stop(Math.min(5000, config.shutdownGraceMs))
      if (limiter instanceof RedisLimiter) limiter.stop()
      for (const stop of stoppers) await stop().catch(() => {})
      client?.close()
      if (redis) await redis.quit().catch(() => redis.disconnect())
      await store.close()
    },
  }
}
