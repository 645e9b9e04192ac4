// The configured backends and the order in which a request tries them (SPEC §4.7).
import type { Config } from '../config.ts'
import { GatewayError } from '../errors.ts'
import { Backend } from './backend.ts'

export class BackendRegistry {
  readonly all: readonly Backend[]
  private readonly byName: ReadonlyMap<string, Backend>

  constructor(config: Config) {
    const auth = { header: config.upstreamAuthHeader, scheme: config.upstreamAuthScheme }
    const token = config.upstreamToken
    this.all = config.backends.map((b) => new Backend(b, token ? { ...auth, token } : auth))
    this.byName = new Map(this.all.map((b) => [b.name, b]))
  }

  get(name: string): Backend | undefined {
    return this.byName.get(name)
  }

  /**
   * Backends to try in order. Healthy or not-yet-probed backends come first; a backend known to be
   * down is still tried last, since a probe can lag behind a recovery.
   */
  candidates(): Backend[] {
    const ordered = [...this.all]
    ordered.sort((a, b) => rank(a) - rank(b) || a.inFlight - b.inFlight)
    return ordered
  }

  /** The backend a management call names in `X-Backend` (SPEC §4.7), else the usual order. */
  target(name: string | null): Backend[] {
    if (!name) return this.candidates()
    const backend = this.byName.get(name)
    if (!backend)
      throw new GatewayError('bad_request', `unknown backend '${name}' in X-Backend; configured: ${this.all.map((b) => b.name).join(', ')}`)
    return [backend]
  }

  anyUp(): boolean {
    return this.all.some((b) => b.health === 'up')
  }
}

function rank(b: Backend): number {
  return b.health === 'down' ? 1 : 0
}
