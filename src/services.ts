// Everything a running gateway holds open, built from the config in one place. `start()` opens what
// requests need before the server accepts connections; `stop()` closes it after the last response
// (SPEC §4.1). Elysia does not await onStart/onStop (STACK), so cli.ts drives both explicitly.
import { DiscoveryPoller } from './backends/poller.ts'
import { BackendRegistry } from './backends/registry.ts'
import type { Config } from './config.ts'
import type { Logger } from './log.ts'
import { createProxy, type ProxyHandler } from './proxy/service.ts'
import { InFlight } from './runtime/inflight.ts'
import type { Runtime } from './runtime/runtime.ts'

export interface Services {
  readonly config: Config
  readonly log: Logger
  readonly runtime: Runtime
  readonly backends: BackendRegistry
  readonly discovery: DiscoveryPoller
  readonly inflight: InFlight
  readonly proxy: ProxyHandler
  readonly startedAt: number
  start(): Promise<void>
  stop(): Promise<void>
}

export function createServices(config: Config, log: Logger, runtime: Runtime): Services {
  const backends = new BackendRegistry(config)
  const discovery = new DiscoveryPoller(backends, log, {
    intervalMs: config.discoveryIntervalMs,
    probeTimeoutMs: config.connectTimeoutMs,
  })
  const inflight = new InFlight()
  const proxy = createProxy({ config, backends, log, inflight, clientSignal: runtime.clientSignal })
  return {
    config,
    log,
    runtime,
    backends,
    discovery,
    inflight,
    proxy,
    startedAt: Date.now(),
    async start() {
      await discovery.start()
    },
    async stop() {
      discovery.stop()
    },
  }
}
