// The configured backends and the routing decisions over them (SPEC §4.6, §4.7): which backends may
// serve a model, in which order; where model management goes.
import type { Config } from '../config.ts'
import { GatewayError } from '../errors.ts'
import { Backend } from './backend.ts'
import { normalizeModel, remembered } from './model-name.ts'
import { type BackendView, selectBackends } from './select.ts'

export class BackendRegistry {
  readonly all: readonly Backend[]
  private readonly byName: ReadonlyMap<string, Backend>
  private rotation = 0
  /** normalizeModel for the request path. */
  private readonly canonical = remembered(normalizeModel)

  constructor(config: Config) {
    const auth = { header: config.upstreamAuthHeader, scheme: config.upstreamAuthScheme }
    const token = config.upstreamToken
    const limits = {
      maxConnections: config.maxConnections,
      // SPEC §4.7: a bounded queue and wait; Ollama's own queue default is 512.
      maxQueue: 512,
      maxQueueWaitMs: 60_000,
      // The breaker cools down for one discovery interval, between 1 and 30 seconds.
      breakerCooldownMs: Math.min(30_000, Math.max(1000, config.discoveryIntervalMs)),
    }
    this.all = config.backends.map((b) => new Backend(b, token ? { ...auth, token } : auth, limits))
    this.byName = new Map(this.all.map((b) => [b.name, b]))
  }

  get(name: string): Backend | undefined {
    return this.byName.get(name)
  }

  usable(): Backend[] {
    return this.all.filter((b) => b.health !== 'down' && b.breaker.allows())
  }

  anyUp(): boolean {
    return this.all.some((b) => b.health === 'up')
  }

  holders(model: string): Backend[] {
    const wanted = normalizeModel(model)
    return this.all.filter((b) => b.models.has(wanted))
  }

  /** SPEC §4.7 for a model: the backends to try, in order; undefined when no backend has the model. */
  forModel(model: string): Backend[] | undefined {
    const wanted = this.canonical(model)
    const views: BackendView[] = this.all.map((b) => ({
      name: b.name,
      healthy: b.health !== 'down',
      breakerAllows: b.breaker.allows(),
      hasModel: b.models.has(wanted),
      loaded: b.loaded.has(wanted),
      inFlight: b.inFlight,
      weight: b.weight,
    }))
    const selection = selectBackends(views, this.rotation++)
    if (selection.kind === 'unknown') return undefined
    if (selection.kind === 'unavailable') {
      const wait = Math.min(...selection.holders.map((n) => this.byName.get(n)?.breaker.retryAfterS() ?? 5))
      throw new GatewayError(
        'no_healthy_backend',
        `model '${model}' is on ${selection.holders.join(', ')}, but no such backend is reachable now; retry shortly`,
        {
          'retry-after': String(wait),
        },
      )
    }
    return selection.order.map((n) => this.byName.get(n) as Backend)
  }

  /** Any usable backend, least busy first (model-less calls such as /api/version). */
  any(): Backend[] {
    const usable = this.usable().sort((a, b) => a.inFlight / a.weight - b.inFlight / b.weight)
    if (usable.length === 0)
      throw new GatewayError('no_healthy_backend', 'no backend is reachable now; retry shortly', { 'retry-after': '5' })
    return usable
  }

  /**
   * SPEC §4.7 model management: the backend named in X-Backend; otherwise pull and create go to the
   * usable backend with the most room (fewest model bytes), and the rest to the one backend that
   * holds the model (a choice between several must be made explicit). A model created `from` another
   * is made where that one is, when a usable backend has it: elsewhere Ollama would have to pull it from
   * the registry first, or fail offline.
   */
  forManagement(path: string, model: string | undefined, named: string | null, from?: string): Backend[] {
    if (named) {
      const backend = this.byName.get(named)
      if (!backend)
        throw new GatewayError(
          'bad_request',
          `unknown backend '${named}' in X-Backend; configured: ${this.all.map((b) => b.name).join(', ')}`,
        )
      return [backend]
    }
    if (this.all.length === 1) return [this.all[0] as Backend]
    if (path === '/api/pull' || path === '/api/create') {
      const usable = this.usable()
      if (usable.length === 0)
        throw new GatewayError('no_healthy_backend', 'no backend is reachable now; retry shortly', { 'retry-after': '5' })
      const holders = path === '/api/create' && from ? this.holders(from) : []
      const holding = usable.filter((b) => holders.includes(b))
      const pool = holding.length > 0 ? holding : usable
      return [pool.reduce((roomiest, b) => (b.diskBytes < roomiest.diskBytes ? b : roomiest))]
    }
    if (path.startsWith('/api/blobs/')) {
      throw new GatewayError(
        'bad_request',
        `blob uploads need X-Backend when several backends are configured (${this.names()}): the create that uses the blob must go to the same one`,
      )
    }
    const holders = model ? this.holders(model) : []
    if (holders.length === 0) throw new GatewayError('model_not_found', `model '${model}' not found`)
    if (holders.length > 1 && path !== '/api/push') {
      throw new GatewayError(
        'bad_request',
        `model '${model}' is on several backends (${holders.map((b) => b.name).join(', ')}); name one in X-Backend`,
      )
    }
    return [holders[0] as Backend]
  }

  private names(): string {
    return this.all.map((b) => b.name).join(', ')
  }
}
