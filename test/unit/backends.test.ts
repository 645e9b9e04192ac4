// SPEC §4.7's pure pieces: the selection policy, the circuit breaker, the fair queue.
import { describe, expect, test } from 'bun:test'
import { FairAdmission } from '../../src/backends/admission.ts'
import { CircuitBreaker } from '../../src/backends/breaker.ts'
import { type BackendView, selectBackends } from '../../src/backends/select.ts'
import { Cancel } from '../../src/runtime/client.ts'

const view = (name: string, over: Partial<BackendView> = {}): BackendView => ({
  name,
  healthy: true,
  breakerAllows: true,
  hasModel: true,
  loaded: false,
  inFlight: 0,
  weight: 1,
  ...over,
})
const order = (views: BackendView[], rotation = 0) => {
  const s = selectBackends(views, rotation)
  return s.kind === 'ok' ? s.order : s.kind
}

describe('selectBackends', () => {
  test('only backends with the model; unknown when none has it', () => {
    expect(order([view('a', { hasModel: false }), view('b')])).toEqual(['b'])
    expect(order([view('a', { hasModel: false })])).toBe('unknown')
  })
  test('holders that are unhealthy or whose breaker is open: unavailable, naming them', () => {
    expect(selectBackends([view('a', { healthy: false }), view('b', { breakerAllows: false }), view('c', { hasModel: false })], 0)).toEqual(
      {
        kind: 'unavailable',
        holders: ['a', 'b'],
      },
    )
    expect(order([view('a', { healthy: false }), view('b')])).toEqual(['b'])
  })
  test('loaded first, then fewest in flight', () => {
    expect(order([view('a', { inFlight: 0 }), view('b', { loaded: true, inFlight: 5 }), view('c', { inFlight: 1 })])).toEqual([
      'b',
      'a',
      'c',
    ])
  })
  test('in flight is weighed: a weight-2 backend with 3 in flight beats a weight-1 backend with 2', () => {
    expect(order([view('a', { inFlight: 2 }), view('b', { inFlight: 3, weight: 2 })])).toEqual(['b', 'a'])
  })
  test('ties rotate with the counter', () => {
    const views = [view('a'), view('b'), view('c')]
    expect([0, 1, 2, 3].map((r) => order(views, r)[0])).toEqual(['a', 'b', 'c', 'a'])
  })
})

describe('CircuitBreaker', () => {
  test('opens after 3 consecutive failures; a success in between resets the count', () => {
    const b = new CircuitBreaker(3, 1000)
    b.failure(0)
    b.failure(0)
    b.success()
    b.failure(0)
    b.failure(0)
    expect(b.allows(0)).toBe(true)
    b.failure(0)
    expect(b.state).toBe('open')
    expect(b.allows(500)).toBe(false)
    expect(b.retryAfterS(500)).toBe(1)
  })
  test('a trial whose client left gives no verdict: the next request becomes the trial', () => {
    const b = new CircuitBreaker(1, 1000)
    b.failure(0)
    expect(b.allows(1000)).toBe(true)
    expect(b.claim(1000)).toBe('trial')
    expect(b.allows(1000)).toBe(false)
    b.abandon('trial')
    expect(b.state).toBe('half_open')
    expect(b.allows(1000)).toBe(true)
  })
  test('a claim asks again: two requests chosen before either was sent make one trial, not two', () => {
    const b = new CircuitBreaker(1, 1000)
    expect(b.claim(0)).toBe('send')
    b.failure(0)
    // Open: a request chosen while the breaker was closed, sent only now, is refused.
    expect(b.claim(500)).toBe('refused')
    // Half-open: both requests passed allows() while they waited; only the first to be sent is the trial.
    expect([b.allows(1000), b.allows(1000)]).toEqual([true, true])
    expect(b.claim(1000)).toBe('trial')
    expect(b.claim(1000)).toBe('refused')
    // A plain send from before the breaker opened, whose client left, does not free the trial's slot.
    b.abandon('send')
    expect(b.claim(1000)).toBe('refused')
    b.success()
    expect(b.claim(1000)).toBe('send')
  })
  test('after the cooldown one trial request; its success closes, its failure reopens', () => {
    const b = new CircuitBreaker(1, 1000)
    b.failure(0)
    expect(b.allows(1000)).toBe(true)
    expect(b.claim(1000)).toBe('trial')
    expect(b.allows(1000)).toBe(false) // only one trial at a time
    b.success()
    expect(b.state).toBe('closed')
    b.failure(2000)
    expect(b.allows(3000)).toBe(true)
    expect(b.claim(3000)).toBe('trial')
    b.failure(3000)
    expect(b.state).toBe('open')
    expect(b.allows(3500)).toBe(false)
  })
})

describe('FairAdmission', () => {
  test('serves waiting keys round robin, whatever order they queued in', async () => {
    const q = new FairAdmission(1, 100, 10_000)
    const first = await q.acquire('hog', 'b')
    const served: string[] = []
    const wait = (key: string) =>
      q.acquire(key, 'b').then((release) => {
        served.push(key)
        release()
      })
    const all = [wait('hog'), wait('hog'), wait('hog'), wait('mouse'), wait('mouse')]
    first()
    await Promise.all(all)
    expect(served).toEqual(['hog', 'mouse', 'hog', 'mouse', 'hog'])
    expect(q.inUse).toBe(0)
  })
  test('a full queue and a long wait are 503s', async () => {
    const q = new FairAdmission(1, 1, 50)
    await q.acquire('a', 'gpu1')
    const waiting = q.acquire('b', 'gpu1')
    await expect(q.acquire('c', 'gpu1')).rejects.toThrow("backend 'gpu1' is busy and its queue is full")
    await expect(waiting).rejects.toThrow("backend 'gpu1' stayed busy for 0.05s")
    expect(q.waiting).toBe(0)
  })
  test('a cancelled waiter leaves at once with its reason; the slot goes to the next one', async () => {
    const q = new FairAdmission(1, 1, 10_000)
    const first = await q.acquire('a', 'gpu1')
    const cancel = new Cancel()
    const leaving = q.acquire('b', 'gpu1', cancel)
    expect(q.waiting).toBe(1)
    cancel.abort(new Error('client left'))
    await expect(leaving).rejects.toThrow('client left')
    // Its place in the bounded queue is free again at once, and the next waiter gets the slot.
    expect(q.waiting).toBe(0)
    const next = q.acquire('c', 'gpu1')
    first()
    ;(await next)()
    expect(q.inUse).toBe(0)
    // Already cancelled: refused without queueing.
    await q.acquire('d', 'gpu1').then((release) => {
      const gone = q.acquire('e', 'gpu1', cancel)
      expect(q.waiting).toBe(0)
      release()
      return expect(gone).rejects.toThrow('client left')
    })
  })
})

describe('upstream credentials (SPEC §3.2)', () => {
  const limits = { maxConnections: 1, maxQueue: 1, maxQueueWaitMs: 1000, breakerCooldownMs: 1000 }
  test('Authorization gets the scheme; another header gets the raw token; a backend token wins; names in lower case', async () => {
    const { Backend } = await import('../../src/backends/backend.ts')
    const cfg = { name: 'gpu', url: 'http://h:1', weight: 1 }
    expect(new Backend(cfg, { header: 'Authorization', scheme: 'Bearer', token: 't1' }, limits).authHeader).toEqual([
      'authorization',
      'Bearer t1',
    ])
    expect(new Backend(cfg, { header: 'authorization', scheme: 'Token', token: 't1' }, limits).authHeader).toEqual([
      'authorization',
      'Token t1',
    ])
    expect(new Backend(cfg, { header: 'X-Upstream-Key', scheme: 'Bearer', token: 't1' }, limits).authHeader).toEqual([
      'x-upstream-key',
      't1',
    ])
    expect(new Backend({ ...cfg, token: 'own' }, { header: 'Authorization', scheme: 'Bearer', token: 't1' }, limits).authHeader).toEqual([
      'authorization',
      'Bearer own',
    ])
    expect(new Backend(cfg, { header: 'Authorization', scheme: 'Bearer' }, limits).authHeader).toBeUndefined()
    expect(new Backend({ ...cfg, url: 'http://user:pw@h:1' }, { header: 'Authorization', scheme: 'Bearer' }, limits).describe().url).toBe(
      'http://h:1',
    )
  })
})
