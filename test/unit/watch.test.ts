// SPEC §3.2 (OLLAMA_READ_TIMEOUT_S) and §4.8 (a departed client aborts its upstream request): the
// requests in flight, watched together on one timer (src/proxy/watch.ts).
import { describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { Relay, type RelayResult } from '../../src/proxy/relay.ts'
import { ClientGone, UpstreamTimeout } from '../../src/proxy/upstream.ts'
import { RequestWatch } from '../../src/proxy/watch.ts'
import { Cancel, relayStream } from '../../src/runtime/client.ts'

const request = () => new Request('http://gateway.test/api/chat', { method: 'POST', body: '{}' })

/** A client signal per request, as the runtime gives it; counts how often one was asked for. */
function signals() {
  const controllers = new Map<Request, AbortController>()
  const controllerOf = (r: Request): AbortController => {
    const known = controllers.get(r)
    if (known) return known
    const made = new AbortController()
    controllers.set(r, made)
    return made
  }
  let asked = 0
  return {
    get asked() {
      return asked
    },
    of: (r: Request) => {
      asked++
      return controllerOf(r).signal
    },
    leave: (r: Request) => controllerOf(r).abort(),
  }
}

describe('the request watch', () => {
  test('past the timeout the request is aborted with UpstreamTimeout, late by at most a tick (here 20 ms)', async () => {
    const watch = new RequestWatch(200, () => undefined)
    const abort = new Cancel()
    const started = performance.now()
    let firedAt = 0
    abort.addEventListener('abort', () => {
      firedAt = performance.now()
    })
    watch.watch(request(), abort)
    await Bun.sleep(400)
    expect(abort.reason).toBeInstanceOf(UpstreamTimeout)
    expect((abort.reason as UpstreamTimeout).seconds).toBe(0.2)
    expect(firedAt - started).toBeGreaterThanOrEqual(199)
    expect(firedAt - started).toBeLessThan(200 + 20 + 60)
    expect(watch.size).toBe(0)
  })

  test('refresh re-arms the full timeout; clear ends the watch, and nothing fires after it', async () => {
    const watch = new RequestWatch(200, () => undefined)
    const abort = new Cancel()
    const deadline = watch.watch(request(), abort)
    for (let i = 0; i < 4; i++) {
      await Bun.sleep(100)
      deadline.refresh()
    }
    expect(abort.aborted).toBe(false)
    deadline.clear()
    expect(watch.size).toBe(0)
    await Bun.sleep(300)
    expect(abort.aborted).toBe(false)
  })

  test('a request answered before the next check never asks for its client signal', async () => {
    const clients = signals()
    const watch = new RequestWatch(1000, clients.of)
    for (let i = 0; i < 50; i++) watch.watch(request(), new Cancel()).clear()
    await Bun.sleep(250)
    expect(clients.asked).toBe(0)
  })

  test('a client that leaves while its request is in flight aborts it with ClientGone, at once after the first check', async () => {
    const clients = signals()
    const watch = new RequestWatch(10_000, clients.of)
    const r = request()
    const abort = new Cancel()
    watch.watch(r, abort)
    await Bun.sleep(150) // a check has run (tick 100 ms): the signal is listened to
    expect(clients.asked).toBe(1)
    clients.leave(r)
    expect(abort.reason).toBeInstanceOf(ClientGone)
  })

  test('a client that left before the first check is noticed at that check', async () => {
    const clients = signals()
    const watch = new RequestWatch(10_000, clients.of)
    const r = request()
    const abort = new Cancel()
    watch.watch(r, abort)
    clients.leave(r)
    expect(abort.aborted).toBe(false)
    await Bun.sleep(150)
    expect(abort.reason).toBeInstanceOf(ClientGone)
  })

  test('the timer stops once no request is watched, and starts again with the next', async () => {
    const watch = new RequestWatch(100, () => undefined)
    watch.watch(request(), new Cancel()).clear()
    await Bun.sleep(50)
    expect((watch as unknown as { timer: unknown }).timer).toBeUndefined()
    const abort = new Cancel()
    watch.watch(request(), abort)
    await Bun.sleep(200)
    expect(abort.reason).toBeInstanceOf(UpstreamTimeout)
  })
})

describe("a relayed stream's stalls (SPEC §6: timeouts bound what one client can hold)", () => {
  const relayOn = (watch: RequestWatch, abort: Cancel, results: RelayResult[]) =>
    new Relay({
      abort,
      deadline: watch.watch(request(), abort),
      contentType: 'application/x-ndjson',
      dialect: 'ollama',
      onDone: (result) => results.push(result),
    })

  test('a stall re-arms the deadline for the client; when it reads again, the full timeout for upstream starts anew', async () => {
    const watch = new RequestWatch(200, () => undefined)
    const abort = new Cancel()
    const results: RelayResult[] = []
    const relay = relayOn(watch, abort, results)
    let gaveUp = 0
    await Bun.sleep(150)
    relay.stall(true, () => gaveUp++) // 150 ms after the last chunk: the client now has 200 ms
    await Bun.sleep(150)
    expect(abort.aborted).toBe(false)
    relay.stall(false, () => gaveUp++)
    await Bun.sleep(150) // 450 ms since the last chunk, 150 since the client read
    expect(abort.aborted).toBe(false)
    await Bun.sleep(150)
    expect(abort.reason).toBeInstanceOf(UpstreamTimeout)
    expect(gaveUp).toBe(0)
  })

  test('a stall longer than the timeout lets the client go: upstream aborted, reported once as its departure', async () => {
    const watch = new RequestWatch(200, () => undefined)
    const abort = new Cancel()
    const results: RelayResult[] = []
    const relay = relayOn(watch, abort, results)
    relay.chunk(new TextEncoder().encode('{"a":1}\n'))
    let gaveUp = 0
    relay.stall(true, () => gaveUp++)
    await Bun.sleep(150)
    relay.stall(true, () => gaveUp++) // a second write that waits does not extend the stall's time
    await Bun.sleep(150)
    expect(gaveUp).toBe(1)
    expect(abort.reason).toBeInstanceOf(ClientGone)
    expect(results).toEqual([{ outcome: 'aborted', bytesOut: 8, error: 'client stopped reading for 0.2s' }])
    expect(watch.size).toBe(0)
    relay.stall(false, () => gaveUp++)
    expect(relay.end()).toBeUndefined()
    expect(results).toHaveLength(1)
  })

  /**
   * An endless source relayed through fetch's path (relayStream) by a server with this idle timeout;
   * the request's deadline is 300 ms. `sourceCancelled` is read after the let-go.
   */
  const endlessRelayed = (idleTimeout: number, idleCloses: boolean) => {
    const watch = new RequestWatch(300, () => undefined)
    const abort = new Cancel()
    const results: RelayResult[] = []
    const state = { sourceCancelled: false }
    const piece = new Uint8Array(64 * 1024).fill(120)
    const source = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(piece),
      cancel: () => {
        state.sourceCancelled = true
      },
    })
    const server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      idleTimeout,
      fetch: () => new Response(relayStream(source, relayOn(watch, abort, results), idleCloses)),
    })
    return { abort, results, state, server }
  }

  test("through fetch's body (relayStream), a client that stops reading is let go: the source cancelled, the connection left to the idle timeout", async () => {
    const { abort, results, state, server } = endlessRelayed(1, true)
    try {
      const socket = connect(server.port as number, '127.0.0.1')
      socket.pause()
      socket.on('error', () => {})
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      const until = Date.now() + 3000
      while (results.length === 0 && Date.now() < until) await Bun.sleep(20)
      expect(results).toHaveLength(1)
      expect(results[0]).toMatchObject({ outcome: 'aborted', error: 'client stopped reading for 0.3s' })
      expect(abort.reason).toBeInstanceOf(ClientGone)
      await Bun.sleep(50)
      expect(state.sourceCancelled).toBe(true)
      let tail = ''
      socket.on('data', (d) => {
        tail = (tail + d.toString('latin1')).slice(-16)
      })
      socket.resume()
      await closed
      expect(tail.endsWith('0\r\n\r\n')).toBe(false)
    } finally {
      server.stop(true)
    }
  })

  test('where no idle timeout will close the connection (Deno), the let-go client reads the error line and the end', async () => {
    const { results, state, server } = endlessRelayed(0, false)
    try {
      const socket = connect(server.port as number, '127.0.0.1')
      socket.pause()
      socket.on('error', () => {})
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      const until = Date.now() + 3000
      while (results.length === 0 && Date.now() < until) await Bun.sleep(20)
      expect(results[0]).toMatchObject({ outcome: 'aborted', error: 'client stopped reading for 0.3s' })
      await Bun.sleep(50)
      expect(state.sourceCancelled).toBe(true)
      // Read again: what was sent before the let-go, then the error line, then the chunked end.
      let tail = ''
      const ended = new Promise<void>((resolve) =>
        socket.on('data', (d) => {
          tail = (tail + d.toString('latin1')).slice(-200)
          if (tail.endsWith('0\r\n\r\n')) resolve()
        }),
      )
      socket.resume()
      await Promise.race([ended, Bun.sleep(3000)])
      expect(tail).toEndWith('{"error":"client stopped reading for 0.3s; the response is incomplete"}\n\r\n0\r\n\r\n')
      expect(results).toHaveLength(1)
      socket.destroy()
    } finally {
      server.stop(true)
    }
  })
})
