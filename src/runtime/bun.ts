// The Bun side of the runtime seam: Elysia's own listen (it compiles routes into Bun's native router)
// with the server settings a streaming gateway needs.
import { SWAGGER_ASSETS } from './assets.bun.ts'
import { Http1Client } from './http1.bun.ts'
import type { Runtime, ServeOptions, Server } from './runtime.ts'

type BunServer = ReturnType<typeof Bun.serve>
let current: BunServer | undefined
let idleTimeout = 0

export const bunRuntime: Runtime = {
  name: 'bun',
  serve({ app, hostname, port, tls, idleTimeoutS }: ServeOptions): Server {
    idleTimeout = idleTimeoutS
    app.listen({
      hostname,
      port,
      // SPEC §6: idle keep-alive connections are closed. STACK: the timeout also cuts a response that
      // is silent that long (a cold model load), so requests in flight are exempted (holdOpen).
      idleTimeout: idleTimeoutS,
      // STACK: with port reuse two instances silently share a port; a second one must fail to bind.
      reusePort: false,
      // Elysia turns Bun's development mode on unless NODE_ENV=production; in it Bun answers an error
      // that reaches the server with a page of stack traces and source, which a gateway must never show.
      development: false,
      // JSON bodies are bounded by MAX_BODY_MB in the proxy; blob uploads (many GB) are exempt.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    })
    const server = app.server as BunServer
    current = server
    return {
      port: server.port ?? port,
      stop: (force) => server.stop(force),
    }
  },
  clientIp(request) {
    return current?.requestIP(request)?.address ?? 'unknown'
  },
  httpClient: (options) => new Http1Client(options),
  // On Bun, request.signal fires when the client disconnects before the response completes.
  clientSignal: (request) => request.signal,
  holdOpen(request, hold) {
    if (idleTimeout > 0) current?.timeout(request, hold ? 0 : idleTimeout)
  },
  onSignal(signal, handler) {
    process.on(signal, handler)
  },
  exit: (code) => process.exit(code),
  asset(name) {
    const path = SWAGGER_ASSETS[name]
    return path ? Bun.file(path) : undefined
  },
}
