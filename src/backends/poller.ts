// SPEC §4.6: each backend is polled for the models it has (`/api/tags`) and has loaded (`/api/ps`),
// with jitter so replicas do not poll in step. A probe is bounded by OLLAMA_CONNECT_TIMEOUT_S.
import type { Logger } from '../log.ts'
import type { Backend } from './backend.ts'
import { normalizeModel } from './model-name.ts'
import type { BackendRegistry } from './registry.ts'

interface ModelList {
  models?: Array<{ name?: string; model?: string }>
}

export class DiscoveryPoller {
  private timer?: ReturnType<typeof setTimeout>
  private stopped = false

  constructor(
    private readonly registry: BackendRegistry,
    private readonly log: Logger,
    private readonly opts: { intervalMs: number; probeTimeoutMs: number },
  ) {}

  /** Polls every backend once (awaited, so readiness is known at startup), then keeps polling. */
  async start(): Promise<void> {
    await this.pollAll()
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  async pollAll(): Promise<void> {
    await Promise.all(this.registry.all.map((b) => this.poll(b)))
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

  async poll(backend: Backend): Promise<void> {
    const started = performance.now()
    const wasUp = backend.health === 'up'
    try {
      const [tags, ps] = await Promise.all([this.fetchList(backend, '/api/tags'), this.fetchList(backend, '/api/ps')])
      backend.models = namesOf(tags)
      backend.loaded = namesOf(ps)
      backend.markUp(Math.round(performance.now() - started))
      if (!wasUp) this.log.info('backend up', { backend: backend.name, models: backend.models.size, loaded: backend.loaded.size })
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      if (wasUp || backend.health === 'unknown') this.log.warn('backend down', { backend: backend.name, reason })
      backend.markDown(reason)
    }
  }

  private async fetchList(backend: Backend, path: string): Promise<ModelList> {
    const headers: Record<string, string> = {}
    if (backend.authHeader) headers[backend.authHeader[0]] = backend.authHeader[1]
    let res: Response
    try {
      res = await fetch(backend.url + path, { headers, redirect: 'manual', signal: AbortSignal.timeout(this.opts.probeTimeoutMs) })
    } catch (err) {
      const name = (err as Error)?.name
      throw new Error(
        name === 'TimeoutError'
          ? `${path} did not answer within ${this.opts.probeTimeoutMs / 1000}s`
          : `${path}: ${(err as { code?: string }).code ?? 'unreachable'}`,
      )
    }
    if (!res.ok) {
      await res.body?.cancel()
      throw new Error(`${path} answered ${res.status}`)
    }
    return (await res.json()) as ModelList
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
