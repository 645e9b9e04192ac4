// The one seam between the gateway and the runtime it runs on (SPEC §8.3, STYLE principle 6).
// Each entry (main.ts for Bun, main.deno.ts for Deno) supplies one of these; nothing else in src/
// knows which runtime it is on.

import type { AnyElysia } from 'elysia'
import type { RuntimeClient } from './client.ts'

export interface ServeOptions {
  readonly hostname: string
  readonly port: number
  readonly tls?: { readonly cert: string; readonly key: string }
  readonly app: AnyElysia
  /** Seconds a client connection may sit idle before it is closed (0: never), where the runtime can. */
  readonly idleTimeoutS: number
}

export interface Server {
  readonly port: number
  /** Stop accepting connections; in-flight requests go on unless `force`. */
  stop(force: boolean): Promise<void>
}

export interface Runtime {
  readonly name: 'bun' | 'deno'
  serve(options: ServeOptions): Server
  /** The peer address of a request being served. */
  clientIp(request: Request): string
  /**
   * The runtime's own client for plain-http backends, where it has one cheaper than fetch (SPEC §7);
   * without it every upstream call goes through fetch.
   */
  httpClient?(options: { readonly maxBodyBytes: number; readonly maxIdle: number }): RuntimeClient
  /** A signal that fires when the client disconnects, where the runtime offers one with that meaning. */
  clientSignal(request: Request): AbortSignal | undefined
  /**
   * Exempts the connection of a request still in flight from the idle timeout (a stream may be silent
   * for minutes while a model loads; OLLAMA_READ_TIMEOUT_S bounds that wait), or, with `false` once it
   * is over, subjects it to the timeout again. Absent where the runtime has no idle timeout to set.
   */
  holdOpen?(request: Request, hold: boolean): void
  onSignal(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void
  /** A Swagger UI file by name (`swagger-ui-bundle.js`, ...), served by the gateway itself (SPEC §4.13). */
  asset(name: string): Blob | undefined
  exit(code: number): never
}
