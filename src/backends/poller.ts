// SPEC §4.6: each backend is polled for the models it has (`/api/tags`) and has loaded (`/api/ps`),
// with jitter so replicas do not poll in step. A probe is bounded by OLLAMA_CONNECT_TIMEOUT_S. In
// cluster mode each result is also written to Redis, so a fresh replica routes before its first poll:
// a backend another replica polled lately holds startup only briefly, however slow its first probe.
import type { Redis } from 'ioredis'
import type { Logger } from '../log.ts'
import { toHeaders } from '../runtime/client.ts'
import { type Backend, redactUrl } from './backend.ts'
import { normalizeModel } from './model-name.ts'
import type { BackendRegistry } from './registry.ts'

interface ModelList {
  models?: Array<{ name?: string; model?: string; size?: number }>
}

interface Snapshot {
  models: string[]
  loaded: string[]
  disk: number
  at: number
}

/** An unknown model re-polls a backend at most this often (SPEC §4.6: "at most once per few seconds"). */
const REPOLL_MIN_MS = 3000
/** A backend whose probe failed is probed again after this long, doubling while it stays down. */
const RETRY_FIRST_MS = 1000
/** A probe's timeout firing this much later than due means the process itself was stalled. */
const STALL_MS = 1000
/** At startup, the longest a backend known from a shared snapshot holds the first answer for its probe. */
const SNAPSHOT_START_MS = 1000
/** Keyed by name and address, so deployments sharing one Redis do not read each other's backends. */
const snapshotKey = (backend: Backend) => `nnz:discovery:${backend.name}@${redactUrl(backend.url)}`

export class DiscoveryPoller {
  private timer?: ReturnType<typeof setTimeout>
  private stopped = false
  /** When an unknown model last made each backend re-poll. */
  private readonly lastRepoll = new Map<string, number>()
  private readonly pending = new Map<string, Promise<void>>()
  /** The fresh poll waiting for each backend's running probe to end (see `poll`). */
  private readonly queued = new Map<string, Promise<void>>()
  /** The early re-probe waiting for each backend that is down. */
  private readonly retries = new Map<string, ReturnType<typeof setTimeout>>()

  constructor(
    private readonly registry: BackendRegistry,
    private readonly log: Logger,
    private readonly opts: { intervalMs: number; probeTimeoutMs: number; redis?: Redis },
  ) {}

  /**
   * Loads the shared snapshots once Redis is up (`redisUp` settles when it connects or gives up), polls
   * every backend once, then keeps polling. The first poll is awaited, so readiness is known when the
   * gateway listens, except for a backend known from a snapshot: its probe is waited for at most
   * SNAPSHOT_START_MS, and the snapshot routes until the probe answers (SPEC §4.6).
   */
  async start(redisUp: Promise<unknown> = Promise.resolve()): Promise<void> {
    const polls = this.registry.all.map((b) => this.poll(b))
    await redisUp
    // A probe that answered before Redis was up could not share what it found: it does now (later ones
    // share their own).
    for (const b of this.registry.all) if (b.health === 'up') this.saveSnapshot(b)
    const known = await this.loadSnapshots()
    let timer: ReturnType<typeof setTimeout> | undefined
    const brief = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SNAPSHOT_START_MS)
    })
    await Promise.all(this.registry.all.map((b, i) => (known.has(b) ? Promise.race([polls[i], brief]) : polls[i])))
    clearTimeout(timer)
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    for (const retry of this.retries.values()) clearTimeout(retry)
    this.retries.clear()
  }

  /** Polls every backend; `fresh` as for `poll`. */
  async pollAll(fresh = false): Promise<void> {
    await Promise.all(this.registry.all.map((b) => this.poll(b, fresh)))
  }

  /**
   * SPEC §4.6: before a 404, re-poll the backends not polled in the last few seconds, and wait for any
   * probe already running: the refresh after a pull, copy or delete through the gateway starts as that
   * answer ends, so the client's next request (`ollama cp a b`, then a chat with `b`) may come first.
   */
  async repollStale(): Promise<void> {
    const now = Date.now()
    const probes: Promise<void>[] = []
    for (const b of this.registry.all) {
      // A fresh poll waiting behind a running probe is the one that will see a change just made.
      const running = this.queued.get(b.name) ?? this.pending.get(b.name)
      if (running) probes.push(running)
      else if (now - (this.lastRepoll.get(b.name) ?? 0) >= REPOLL_MIN_MS) {
        this.lastRepoll.set(b.name, now)
        probes.push(this.poll(b))
      }
    }
    await Promise.all(probes)
  }

  private schedule(): void {
    if (this.stopped) return
    const jitter = this.opts.intervalMs * (0.9 + Math.random() * 0.2)
    this.timer = setTimeout(() => {
      this.pollAll().finally(() => this.schedule())
    }, jitter)
    // A pending poll must not keep a stopping process alive.
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  /**
   * Polls one backend; concurrent callers share one probe. A `fresh` poll must see what changed before
   * it was asked for (a refresh, or a pull, create, copy or delete just answered): a probe already
   * running may have read the backend's lists before the change, so a fresh poll runs after it, shared
   * by the other fresh polls asked for meanwhile.
   */
  poll(backend: Backend, fresh = false): Promise<void> {
    const running = this.pending.get(backend.name)
    if (!running) {
      const probe = this.probe(backend).finally(() => this.pending.delete(backend.name))
      this.pending.set(backend.name, probe)
      return probe
    }
    if (!fresh) return running
    let next = this.queued.get(backend.name)
    if (!next) {
      // Once the running probe has ended: a probe started since then started after this call too.
      next = running.then(() => {
        this.queued.delete(backend.name)
        return this.stopped ? undefined : this.poll(backend)
      })
      this.queued.set(backend.name, next)
    }
    return next
  }

  private async probe(backend: Backend, again = false): Promise<void> {
    const started = performance.now()
    const was = backend.health
    try {
      const [tags, ps] = await Promise.all([this.fetchList(backend, '/api/tags'), this.fetchList(backend, '/api/ps')])
      backend.models = namesOf(tags)
      backend.loaded = namesOf(ps)
      backend.diskBytes = (tags.models ?? []).reduce((sum, m) => sum + (typeof m.size === 'number' ? m.size : 0), 0)
      backend.markUp(Math.round(performance.now() - started))
      if (was !== 'up') this.log.info('backend up', { backend: backend.name, models: backend.models.size, loaded: backend.loaded.size })
      this.saveSnapshot(backend)
    } catch (err) {
      // A timeout that fired well after it was due says this process stood still (paused, suspended, a
      // blocked loop) while the answer may have been waiting: one fresh probe decides, not the stale one.
      const stalled = err instanceof ProbeTimeout && performance.now() - started > this.opts.probeTimeoutMs + STALL_MS
      if (stalled && !again && !this.stopped) return this.probe(backend, true)
      const reason = err instanceof Error ? err.message : String(err)
      if (was !== 'down') this.log.warn('backend down', { backend: backend.name, reason })
      backend.markDown(reason)
      this.retrySoon(backend)
    }
  }

  /**
   * A down backend is out of routing, so one lost probe (a restart, a network blip, the process paused
   * mid-probe) would keep it out for a whole interval: it is probed again after 1 s, then 2, 4, ...
   * while it stays down, until that reaches the interval and the regular polls take over.
   */
  private retrySoon(backend: Backend): void {
    if (this.stopped || this.retries.has(backend.name)) return
    const delay = RETRY_FIRST_MS * 2 ** Math.min(20, backend.consecutiveFailures - 1)
    if (delay >= this.opts.intervalMs) return
    const retry = setTimeout(() => {
      this.retries.delete(backend.name)
      void this.poll(backend)
    }, delay)
    ;(retry as { unref?: () => void }).unref?.()
    this.retries.set(backend.name, retry)
  }

  private async fetchList(backend: Backend, path: string): Promise<ModelList> {
    const headers = toHeaders(backend.withAuth([]))
    let res: Response
    try {
      res = await fetch(backend.url + path, { headers, redirect: 'manual', signal: AbortSignal.timeout(this.opts.probeTimeoutMs) })
    } catch (err) {
      const name = (err as Error)?.name
      if (name === 'TimeoutError') throw new ProbeTimeout(`${path} did not answer within ${this.opts.probeTimeoutMs / 1000}s`)
      throw new Error(`${path}: ${(err as { code?: string }).code ?? 'unreachable'}`)
    }
    if (!res.ok) {
      await res.body?.cancel()
      throw new Error(`${path} answered ${res.status}`)
    }
    return (await res.json()) as ModelList
  }

  private saveSnapshot(backend: Backend): void {
    const redis = this.opts.redis
    if (redis?.status !== 'ready') return
    const snapshot: Snapshot = { models: [...backend.models], loaded: [...backend.loaded], disk: backend.diskBytes, at: Date.now() }
    redis.set(snapshotKey(backend), JSON.stringify(snapshot), 'PX', Math.max(3 * this.opts.intervalMs, 30_000)).catch(() => {})
  }

  /**
   * The backends a snapshot was found for while their first probe is still running (their health stays
   * `unknown`, which routing admits); a probe that already answered is not overwritten.
   */
  private async loadSnapshots(): Promise<Set<Backend>> {
    const known = new Set<Backend>()
    const redis = this.opts.redis
    if (redis?.status !== 'ready') return known
    try {
      const values = await redis.mget(this.registry.all.map(snapshotKey))
      this.registry.all.forEach((backend, i) => {
        const raw = values[i]
        if (!raw || backend.health !== 'unknown') return
        const s = JSON.parse(raw) as Snapshot
        backend.models = new Set(s.models)
        backend.loaded = new Set(s.loaded)
        backend.diskBytes = s.disk
        known.add(backend)
      })
    } catch {
      // A snapshot only speeds up the first routing decision; the first poll is the source of truth.
    }
    if (known.size > 0) this.log.info('discovery snapshot loaded', { backends: [...known].map((b) => b.name) })
    return known
  }
}

function namesOf(list: ModelList): Set<string> {
  const names = new Set<string>()
  for (const m of list.models ?? []) {
    const name = m.model ?? m.name
    if (typeof name === 'string') names.add(normalizeModel(name))
  }
  return names
}

class ProbeTimeout extends Error {}
