// SPEC §4.4 in cluster mode: counters live in Redis and are checked and updated atomically in one
// round trip (a Lua script), so N replicas enforce exactly the key's limit. Concurrency slots are
// leases that expire: a crashed replica cannot leak them; live requests renew theirs.
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { GatewayError } from '../errors.ts'
import type { Metrics } from '../metrics/metrics.ts'
import type { Limits } from '../store/store.ts'
import { type Admission, type LimitName, limitError, limitHeaders, type RateLimiter, WINDOW_MS, windowOf } from './limiter.ts'

/** A lease lives this long unless renewed; renewals run at a third of it. */
export const LEASE_MS = 15_000

// KEYS: requests counter, tokens counter, lease set. ARGV: rpm, tpm, max_concurrency, now, lease id, lease expiry.
const ADMIT = `
local rpm, tpm, maxc, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= maxc then return {0, 'concurrency', requests, tokens} end
end
if tpm > 0 and tokens >= tpm then return {0, 'tokens', requests, tokens} end
if rpm > 0 and requests >= rpm then return {0, 'requests', requests, tokens} end
requests = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ${WINDOW_MS * 2})
if maxc > 0 then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ${LEASE_MS * 4})
end
return {1, '', requests, tokens}
`

// KEYS: tokens counter, lease set. ARGV: tokens to charge, lease id ('' when none).
const FINISH = `
if tonumber(ARGV[1]) > 0 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ${WINDOW_MS * 2})
end
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
`

const keys = (keyId: string, window: number) => [
  `nnz:rl:{${keyId}}:r:${window}`,
  `nnz:rl:{${keyId}}:t:${window}`,
  `nnz:rl:{${keyId}}:leases`,
]

type FinishArgs = [tokenKey: string, leaseSet: string, charge: number, lease: string]
type FinishCommand = (...args: FinishArgs) => Promise<unknown>

export class RedisLimiter implements RateLimiter {
  private readonly leases = new Map<string, string>()
  private readonly renewer: ReturnType<typeof setInterval>
  /** Request ends waiting for this turn's write, and the callers holding their answers for it. */
  private ends: FinishArgs[] = []
  private waiting: Array<() => void> = []

  constructor(
    private readonly redis: Redis,
    private readonly metrics: Metrics,
    private readonly failClosed: boolean,
  ) {
    redis.defineCommand('nnzAdmit', { numberOfKeys: 3, lua: ADMIT })
    redis.defineCommand('nnzFinish', { numberOfKeys: 2, lua: FINISH })
    this.renewer = setInterval(() => this.renew(), LEASE_MS / 3)
    ;(this.renewer as { unref?: () => void }).unref?.()
  }

  stop(): void {
    clearInterval(this.renewer)
  }

  async admit(keyId: string, limits: Limits, now = Date.now()): Promise<Admission> {
    const leaseId = randomUUID()
    let result: [number, string, number, number]
    try {
      if (this.redis.status !== 'ready') throw new Error('redis not connected')
      const admit = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<[number, string, number, number]>>).nnzAdmit as (
        ...a: unknown[]
      ) => Promise<[number, string, number, number]>
      result = await admit.call(
        this.redis,
        ...keys(keyId, windowOf(now)),
        limits.rpm ?? 0,
        limits.tpm ?? 0,
        limits.max_concurrency ?? 0,
        now,
        leaseId,
        now + LEASE_MS,
      )
    } catch {
      // SPEC §4.4: Redis unreachable: admit and count it, or reject when configured to fail closed.
      if (this.failClosed)
        throw new GatewayError('unavailable', 'rate limiter unavailable (Redis unreachable); retry shortly', { 'retry-after': '2' })
      this.metrics.rateLimitFailOpen.inc()
      return { headers: {}, finish: () => undefined }
    }
    const [allowed, which, requests, tokens] = result
    const headers = limitHeaders(limits, Number(requests), Number(tokens), now)
    if (!allowed) throw limitError(which as LimitName, limits, headers, now)
    const [, tokenKey, set] = keys(keyId, windowOf(now)) as [string, string, string]
    const lease = limits.max_concurrency ? leaseId : ''
    if (lease) this.leases.set(lease, set)
    let finished = false
    return {
      headers,
      // One script at the end of a request: free the lease and charge the tokens together.
      finish: (used, beforeAnswer) => {
        if (finished) return
        finished = true
        if (lease) this.leases.delete(lease)
        const charge = limits.tpm && used > 0 ? used : 0
        if (!lease && !charge) return
        const args: FinishArgs = [tokenKey, set, charge, lease]
        if (beforeAnswer) return this.endThisTurn(args)
        // Otherwise written at once (the client library's auto-pipelining would hold it behind the batch
        // in flight).
        const run = (this.redis as unknown as { nnzFinish: FinishCommand }).nnzFinish
        run.call(this.redis, ...args).catch(() => {})
        return undefined
      },
    }
  }

  /**
   * SPEC §4.4, §7: the ends of the requests answered in one event-loop turn go to Redis in one write, a
   * pipeline sent at the turn's end, and only then are their answers let go. One write per request cost
   * the event loop a quarter of its time at saturation (a send and the wake-up of Redis each time).
   */
  private endThisTurn(args: FinishArgs): Promise<void> {
    if (this.ends.length === 0) setImmediate(this.writeEnds)
    this.ends.push(args)
    return new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private readonly writeEnds = (): void => {
    const ends = this.ends
    const waiting = this.waiting
    this.ends = []
    this.waiting = []
    // Not connected: fail open, as admit does (the lease expires on its own).
    if (this.redis.status === 'ready') {
      const pipeline = this.redis.pipeline() as unknown as { nnzFinish: (...a: FinishArgs) => unknown; exec(): Promise<unknown> }
      for (const end of ends) pipeline.nnzFinish(...end)
      // A manual pipeline is written now; the auto-pipeline would wait for the batch in flight.
      pipeline.exec().catch(() => {})
    }
    for (const resolve of waiting) resolve()
  }

  /** Live requests keep their leases; one pipeline per renewal round. */
  private renew(): void {
    if (this.leases.size === 0 || this.redis.status !== 'ready') return
    const until = Date.now() + LEASE_MS
    const pipeline = this.redis.pipeline()
    for (const [lease, set] of this.leases) pipeline.zadd(set, 'XX', until, lease)
    pipeline.exec().catch(() => {})
  }
}
