// The Deno side of the runtime seam (SPEC §8.3). Elysia's Bun adapter does not run here: the app's
// `fetch` is served with Deno.serve, and lifecycle is driven by cli.ts on every runtime alike.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Runtime, ServeOptions, Server } from './runtime.ts'

// Deno has no file embedding for `deno run`: the Swagger UI files are read from the package.
const require = createRequire(import.meta.url)
const ASSET_TYPES: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript',
  'swagger-ui.css': 'text/css',
  'favicon-32x32.png': 'image/png',
}

declare const Deno: {
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string; onListen?: (addr: { port: number }) => void },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void>; finished: Promise<void> }
  addSignalListener(signal: string, handler: () => void): void
  exit(code: number): never
}

const peers = new WeakMap<Request, string>()
/** A request's copy (withRoutableUrl) → the request Deno served, whose signal means its client. */
const served = new WeakMap<Request, Request>()

/**
 * Elysia's fetch handler cuts the path from the URL at the first `/` from index 11, taking the host to
 * be at least four characters: for `Host: gw`, `http://gw/api/chat` would route as `/chat`. (On Bun the
 * server's own router cuts it.) A shorter host is read as `localhost` (Deno's URLs drop a default port,
 * so the port cannot lengthen it). The gateway reads only the path and query from the URL, and the Host
 * header is left as the client sent it.
 */
function withRoutableUrl(request: Request): Request {
  const url = request.url
  const authority = url.indexOf('//') + 2
  const path = url.indexOf('/', authority)
  if (path >= 11 || path === -1) return request
  const port = url.slice(authority, path).indexOf(':')
  const host = port === -1 ? 'localhost' : `localhost${url.slice(authority + port, path)}`
  // Only what the gateway reads is copied: copying the request itself would read its `signal` for
  // every such request (clientSignal reads the served request's only for one still in flight).
  const init = { method: request.method, headers: request.headers, body: request.body, duplex: 'half' }
  const copy = new Request(url.slice(0, authority) + host + url.slice(path), init as RequestInit)
  served.set(copy, request)
  return copy
}

export const denoRuntime: Runtime = {
  name: 'deno',
  serve(options: ServeOptions): Server {
    const fetchApp = options.app.fetch
    const server = Deno.serve(
      {
        hostname: options.hostname,
        port: options.port,
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
        onListen: () => {},
      },
      (served, info) => {
        const request = withRoutableUrl(served)
        peers.set(request, info.remoteAddr.hostname)
        return fetchApp(request)
      },
    )
    let shutdown: Promise<void> | undefined
    return {
      port: server.addr.port,
      // Deno's shutdown() is graceful; there is no forced variant, so a forced stop just stops waiting.
      stop: (force) => {
        shutdown ??= server.shutdown()
        return force ? Promise.resolve() : shutdown
      },
    }
  },
  clientIp: (request) => peers.get(request) ?? 'unknown',
  // With Deno's `no-legacy-abort` (deno.json) request.signal fires only when the client leaves before
  // the response is sent. Without it, it fires after a successful response too, when the request is
  // over and nothing is left to abort, and Deno prints a warning about it once.
  clientSignal: (request) => (served.get(request) ?? request).signal,
  onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
  exit: (code) => Deno.exit(code),
  asset(name) {
    const type = ASSET_TYPES[name]
    return type ? new Blob([readFileSync(require.resolve(`swagger-ui-dist/${name}`))], { type }) : undefined
  },
}
