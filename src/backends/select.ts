// SPEC §4.7 routing policy, as a pure function: candidates are healthy backends whose breaker admits a
// request and which have the model; the ones with the model loaded come first, then the least busy
// relative to weight, ties rotating.

export interface BackendView {
  readonly name: string
  readonly healthy: boolean
  readonly breakerAllows: boolean
  readonly hasModel: boolean
  readonly loaded: boolean
  readonly inFlight: number
  readonly weight: number
}

export type Selection =
  | { readonly kind: 'ok'; readonly order: readonly string[] }
  /** Nobody has the model (after discovery): 404. */
  | { readonly kind: 'unknown' }
  /** Some backend has it, but none may take a request now: 503. */
  | { readonly kind: 'unavailable'; readonly holders: readonly string[] }

/**
 * `rotation` is a counter the caller advances per request; among equally good backends it decides who
 * goes first, so ties spread evenly instead of always favouring the first configured one.
 */
export function selectBackends(views: readonly BackendView[], rotation: number): Selection {
  const holders = views.filter((v) => v.hasModel)
  if (holders.length === 0) return { kind: 'unknown' }
  const usable = holders.filter((v) => v.healthy && v.breakerAllows)
  if (usable.length === 0) return { kind: 'unavailable', holders: holders.map((v) => v.name) }
  const n = usable.length
  const ranked = usable.map((v, i) => ({ v, tie: (i - (rotation % n) + n) % n }))
  ranked.sort((a, b) => Number(b.v.loaded) - Number(a.v.loaded) || a.v.inFlight / a.v.weight - b.v.inFlight / b.v.weight || a.tie - b.tie)
  return { kind: 'ok', order: ranked.map((r) => r.v.name) }
}
