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

// Redis runs these scripts for every limited request, on the gateway's cores (SPEC §7). Most of what a
// script costs Redis is the machinery around each redis.call, several times the command's own work, so
// the scripts make the fewest calls that keep the counts exact: a window's counter gets its expiry once,
// when it is created; expired leases (of a replica that died) are dropped only when they would turn a
// request away; arguments go to redis.call as strings (a Lua number is formatted with sprintf on every
// call). And one script call carries every admit (or every end) of an event-loop turn: one command for
// the client library to encode and one write per turn (bench/RESULTS.md: Redis's CPU per limited
// request 50-57 -> 32-37 µs, the limited key +20%).

// Per admit, KEYS: requests counter, tokens counter, lease set; ARGV: rpm, tpm, max_concurrency, now,
// lease id, lease expiry. Per admit, in order, the answer {admitted 1|0, limit hit, requests, tokens}.
const ADMIT = `
local function admit(k, a)
  local rpm, tpm, maxc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local counts = redis.call('MGET', KEYS[k + 1], KEYS[k + 2])
  local requests = tonumber(counts[1] or '0')
  local tokens = tonumber(counts[2] or '0')
  if maxc > 0 and redis.call('ZCARD', KEYS[k + 3]) >= maxc then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', ARGV[a + 4])
    if redis.call('ZCARD', KEYS[k + 3]) >= maxc then return {0, 'concurrency', requests, tokens} end
  end
  if tpm > 0 and tokens >= tpm then return {0, 'tokens', requests, tokens} end
  if rpm > 0 and requests >= rpm then return {0, 'requests', requests, tokens} end
  requests = redis.call('INCR', KEYS[k + 1])
  if requests == 1 then redis.call('PEXPIRE', KEYS[k + 1], '${WINDOW_MS * 2}') end
  if maxc > 0 then
    redis.call('ZADD', KEYS[k + 3], ARGV[a + 6], ARGV[a + 5])
    redis.call('PEXPIRE', KEYS[k + 3], '${LEASE_MS * 4}')
  end
  return {1, '', requests, tokens}
end
local answers = {}
for i = 0, #KEYS / 3 - 1 do answers[i + 1] = admit(i * 3, i * 6) end
return answers
`

// Per end, KEYS: tokens counter, lease set; ARGV: tokens to charge, lease id ('' when none). A tokens
// counter is created by its window's first charge, and gets its expiry then.
const FINISH = `
for i = 0, #KEYS / 2 - 1 do
  local charge = tonumber(ARGV[i * 2 + 1])
  if charge > 0 and redis.call('INCRBY', KEYS[i * 2 + 1], ARGV[i * 2 + 1]) == charge then
    redis.call('PEXPIRE', KEYS[i * 2 + 1], '${WINDOW_MS * 2}')
  end
  local lease = ARGV[i * 2 + 2]
  if lease ~= '' then redis.call('ZREM', KEYS[i * 2 + 2], lease) end
end
return 1
`
/** At most this many admits or ends per script call: a call holds Redis for its whole length. */
const PER_CALL = 128

const keys = (keyId: string, window: number) => [
  `nnz:rl:{${keyId}}:r:${window}`,
  `nnz:rl:{${keyId}}:t:${window}`,
  `nnz:rl:{${keyId}}:leases`,
]

type AdmitAnswer = [admitted: number, which: string, requests: number, tokens: number]
/** One admit's or one end's part of a script call. */
interface ScriptItem {
  readonly keys: readonly string[]
  readonly args: ReadonlyArray<string | number>
}
interface PendingAdmit extends ScriptItem {
  readonly resolve: (answer: AdmitAnswer) => void
  readonly reject: (err: unknown) => void
}
/** A script defined without a fixed key count: the count goes first. */
type Batched = (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<unknown>
interface LimiterCommands {
  nnzAdmit: Batched
  nnzFinish: Batched
}

/** A batched script call's arguments: the number of keys, every item's keys, then every item's arguments. */
function scriptArgs(items: readonly ScriptItem[]): [number, ...Array<string | number>] {
  return [items.reduce((n, item) => n + item.keys.length, 0), ...items.flatMap((item) => item.keys), ...items.flatMap((item) => item.args)]
}

export class RedisLimiter implements RateLimiter {
  private readonly leases = new Map<string, string>()
  private readonly renewer: ReturnType<typeof setInterval>
  /** This turn's admits, its request ends, and the callers holding their answers for those ends. */
  private admits: PendingAdmit[] = []
  private ends: ScriptItem[] = []
  private waiting: Array<() => void> = []
  private scheduled = false

  constructor(
    private readonly redis: Redis,
    private readonly metrics: Metrics,
    private readonly failClosed: boolean,
  ) {
    redis.defineCommand('nnzAdmit', { lua: ADMIT })
    redis.defineCommand('nnzFinish', { lua: FINISH })
    this.renewer = setInterval(() => this.renew(), LEASE_MS / 3)
    ;(this.renewer as { unref?: () => void }).unref?.()
  }

  stop(): void {
    clearInterval(this.renewer)
  }

  async admit(keyId: string, limits: Limits, now = Date.now()): Promise<Admission> {
    const leaseId = limits.max_concurrency ? randomUUID() : ''
    const counters = keys(keyId, windowOf(now))
    const [, tokenKey, set] = counters as [string, string, string]
    let answer: AdmitAnswer
    try {
      if (this.redis.status !== 'ready') throw new Error('redis not connected')
      answer = await new Promise<AdmitAnswer>((resolve, reject) => {
        this.schedule()
        this.admits.push({
          keys: counters,
          args: [limits.rpm ?? 0, limits.tpm ?? 0, limits.max_concurrency ?? 0, now, leaseId, now + LEASE_MS],
          resolve,
          reject,
        })
      })
    } catch {
      // SPEC §4.4: Redis unreachable: admit and count it, or reject when configured to fail closed.
      if (this.failClosed)
        throw new GatewayError('unavailable', 'rate limiter unavailable (Redis unreachable); retry shortly', { 'retry-after': '2' })
      this.metrics.rateLimitFailOpen.inc()
      return { headers: {}, finish: () => undefined }
    }
    const [allowed, which, requests, tokens] = answer
    const headers = limitHeaders(limits, Number(requests), Number(tokens), now)
    if (!allowed) throw limitError(which as LimitName, limits, headers, now)
    if (leaseId) this.leases.set(leaseId, set)
    let finished = false
    return {
      headers,
      // One step at the end of a request: free the lease and charge the tokens together.
      finish: (used, beforeAnswer) => {
        if (finished) return
        finished = true
        if (leaseId) this.leases.delete(leaseId)
        const charge = limits.tpm && used > 0 ? used : 0
        if (!leaseId && !charge) return
        const end: ScriptItem = { keys: [tokenKey, set], args: [charge, leaseId] }
        if (beforeAnswer) return this.endThisTurn(end)
        // Otherwise written at once (the client library's auto-pipelining would hold it behind the batch
        // in flight).
        if (this.redis.status === 'ready') this.commands.nnzFinish(...scriptArgs([end])).catch(() => {})
        return undefined
      },
    }
  }

  private get commands(): LimiterCommands {
    return this.redis as unknown as LimiterCommands
  }

  /**
   * SPEC §4.4, §7: the ends of the requests answered in one event-loop turn go to Redis in one write, at
   * the turn's end, and only then are their answers let go. One write per request cost the event loop a
   * quarter of its time at saturation (a send and the wake-up of Redis each time).
   */
  private endThisTurn(end: ScriptItem): Promise<void> {
    this.schedule()
    this.ends.push(end)
    return new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.writeTurn)
  }

  /**
   * One pipeline per turn: the ends first (their slots are free before this turn's admits are weighed),
   * then the admits, each kind in as few script calls as PER_CALL allows.
   */
  private readonly writeTurn = (): void => {
    this.scheduled = false
    const { admits, ends, waiting } = this
    this.admits = []
    this.ends = []
    this.waiting = []
    if (this.redis.status !== 'ready') {
      // Not connected: the ends fail open (their leases expire on their own), the admits as admit says.
      for (const resolve of waiting) resolve()
      const down = new Error('redis not connected')
      for (const a of admits) a.reject(down)
      return
    }
    const pipeline = this.redis.pipeline() as unknown as LimiterCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> }
    for (let i = 0; i < ends.length; i += PER_CALL) pipeline.nnzFinish(...scriptArgs(ends.slice(i, i + PER_CALL)))
    for (let i = 0; i < admits.length; i += PER_CALL) pipeline.nnzAdmit(...scriptArgs(admits.slice(i, i + PER_CALL)))
    // A manual pipeline is written now; the auto-pipeline would wait for the batch in flight.
    const sent = pipeline.exec()
    for (const resolve of waiting) resolve()
    // Admit i is answer i % PER_CALL of the admit calls' (i / PER_CALL)th, after the end calls.
    const endCalls = Math.ceil(ends.length / PER_CALL)
    sent.then(
      (results) =>
        admits.forEach((a, i) => {
          const [err, answers] = results?.[endCalls + Math.floor(i / PER_CALL)] ?? [null, null]
          const answer = (answers as AdmitAnswer[] | null)?.[i % PER_CALL]
          if (answer && !err) a.resolve(answer)
          else a.reject(err ?? new Error('no answer from redis'))
        }),
      (err) => {
        for (const a of admits) a.reject(err)
      },
    )
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
