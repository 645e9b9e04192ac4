// SPEC §4.12: the proxied requests' metric series, each looked up once and then kept: the hot path
// adds to a bound series instead of building label objects and keys per request. Labels stay
// bounded: the route template (never the raw path), the status, the model.
import type { Metrics } from '../metrics/metrics.ts'
import type { Endpoint } from './endpoints.ts'

interface RouteSeries {
  readonly byStatus: Map<number, () => void>
  readonly latency: (seconds: number) => void
  readonly ttfb: (seconds: number) => void
}

export function createProxySeries(metrics: Metrics) {
  const routes = new Map<Endpoint, RouteSeries>()
  const prompt = new Map<string, (by: number) => void>()
  const completion = new Map<string, (by: number) => void>()

  const routeOf = (endpoint: Endpoint): RouteSeries => {
    let series = routes.get(endpoint)
    if (!series) {
      series = {
        byStatus: new Map(),
        latency: metrics.latency.bind({ route: endpoint.path }),
        ttfb: metrics.ttfb.bind({ route: endpoint.path }),
      }
      routes.set(endpoint, series)
    }
    return series
  }

  const tokensOf = (kind: 'prompt' | 'completion', model: string) => {
    const byModel = kind === 'prompt' ? prompt : completion
    let inc = byModel.get(model)
    if (!inc) {
      inc = metrics.tokens.bind({ model, kind })
      byModel.set(model, inc)
    }
    return inc
  }

  return {
    /** One answered request: its count by status, its duration and, when it reached a backend, its TTFB. */
    answered(endpoint: Endpoint, status: number, seconds: number, ttfbSeconds: number | undefined): void {
      const route = routeOf(endpoint)
      let inc = route.byStatus.get(status)
      if (!inc) {
        inc = metrics.requests.bind({ route: endpoint.path, method: endpoint.method, status: String(status) })
        route.byStatus.set(status, inc)
      }
      inc()
      route.latency(seconds)
      if (ttfbSeconds !== undefined) route.ttfb(ttfbSeconds)
    },
    tokens(model: string, promptTokens: number | null, completionTokens: number | null): void {
      if (promptTokens) tokensOf('prompt', model)(promptTokens)
      if (completionTokens) tokensOf('completion', model)(completionTokens)
    },
  }
}
