// SPEC §4.9: the meter reads token counts from the bytes of an answer's tail, unit-tested.
import { describe, expect, test } from 'bun:test'
import { type MeterKind, MeterTap, UsageChunkStripper } from '../../src/proxy/meter.ts'

const bytes = (text: string) => new TextEncoder().encode(text)

function metered(kind: MeterKind, streamed: boolean, ...chunks: string[]) {
  const tap = new MeterTap(kind)
  for (const c of chunks) tap.chunk(bytes(c))
  return tap.usage(streamed)
}

describe('meter (SPEC §4.9)', () => {
  test('native: counts after JSON whitespace, the last occurrence wins, prompt and eval counts kept apart', () => {
    expect(metered('native', false, '{"done": true, "eval_count":\n 3}')).toEqual({ prompt: 0, completion: 3, partial: false })
    expect(metered('native', false, '{"done":true,"prompt_eval_count": 7,"eval_count":\t3}')).toEqual({
      prompt: 7,
      completion: 3,
      partial: false,
    })
    expect(
      metered(
        'native',
        true,
        '{"done":false,"eval_count":1}\n',
        '{"done":false}\n',
        '{"done":  true,"prompt_eval_count":12,"eval_count":40}\n',
      ),
    ).toEqual({ prompt: 12, completion: 40, partial: false })
  })

  test('native: a stream that never said done is partial, one line per token', () => {
    expect(metered('native', true, '{"done":false}\n', '{"done":false}\n', '{"done":fal')).toEqual({
      prompt: null,
      completion: 2,
      partial: true,
    })
  })

  test('openai: usage fields, Anthropic-style names as a fallback, null counts skipped', () => {
    expect(metered('openai', false, '{"usage":{"prompt_tokens":5,"completion_tokens":9}}')).toEqual({
      prompt: 5,
      completion: 9,
      partial: false,
    })
    expect(metered('openai', false, '{"usage":{"input_tokens":4,"output_tokens":null}}')).toEqual({
      prompt: 4,
      completion: 0,
      partial: false,
    })
    expect(metered('openai', true, 'data: {"choices":[]}\n\n', 'data: {"choices":[]}\n\n')).toEqual({
      prompt: null,
      completion: 2,
      partial: true,
    })
  })

  test('event streams: final only with their closing event; unfinished, the early input count kept, one event per token', () => {
    const ev = (name: string, data: string) => `event: ${name}\ndata: {"type":"${name}"${data}}\n\n`
    const start = ev('message_start', ',"message":{"usage":{"input_tokens":12,"output_tokens":0}}')
    const delta = ev('content_block_delta', ',"delta":{"type":"text_delta","text":"x"}')
    const end = ev('message_delta', ',"usage":{"input_tokens":12,"output_tokens":2}') + ev('message_stop', '')
    expect(metered('anthropic', true, start, delta, delta, end)).toEqual({ prompt: 12, completion: 2, partial: false })
    expect(metered('anthropic', true, start, delta, delta)).toEqual({ prompt: 12, completion: 3, partial: true })
    expect(metered('anthropic', false, '{"type":"message","usage":{"input_tokens":5,"output_tokens":4}}')).toEqual({
      prompt: 5,
      completion: 4,
      partial: false,
    })
    const created = ev('response.created', ',"response":{"usage":null}')
    const done = (name: string) => ev(name, ',"response":{"usage":{"input_tokens":3,"output_tokens":1}}')
    expect(metered('responses', true, created, done('response.completed'))).toEqual({ prompt: 3, completion: 1, partial: false })
    expect(metered('responses', true, created, done('response.incomplete'))).toEqual({ prompt: 3, completion: 1, partial: false })
    expect(metered('responses', true, created, ev('response.output_text.delta', ''))).toEqual({
      prompt: null,
      completion: 2,
      partial: true,
    })
  })

  test('a long event stream whose closing event leaves the input count out: the count from its first event', () => {
    const ev = (name: string, data: string) => `event: ${name}\ndata: {"type":"${name}"${data}}\n\n`
    const deltas = Array.from({ length: 200 }, () => ev('content_block_delta', ',"delta":{"type":"text_delta","text":"word"}'))
    const chunks = [
      ev('message_start', ',"message":{"usage":{"input_tokens":31,"output_tokens":1}}'),
      ...deltas,
      ev('message_delta', ',"usage":{"output_tokens":200}') + ev('message_stop', ''),
    ]
    expect(chunks.join('').length).toBeGreaterThan(4096 * 2)
    expect(metered('anthropic', true, ...chunks)).toEqual({ prompt: 31, completion: 200, partial: false })
  })

  test('an event whose blank line is split across chunks is counted once', () => {
    expect(metered('openai', true, 'data: {"a":1}\n', '\ndata: {"a":2}\n', '\n')).toEqual({ prompt: null, completion: 2, partial: true })
  })

  test('an absurd count is clamped to the 32-bit column range', () => {
    expect(metered('native', false, '{"done":true,"prompt_eval_count":99999999999999999999,"eval_count":1}').prompt).toBe(2 ** 31 - 1)
  })

  test('two streams stripped at once do not share a split character', () => {
    const a = new UsageChunkStripper()
    const b = new UsageChunkStripper()
    const euro = bytes('data: {"x":"€"}\n\n')
    const split = euro.indexOf(0xe2) + 1 // inside the three bytes of €
    const out: string[] = []
    const decode = (u: Uint8Array) => new TextDecoder().decode(u)
    out.push(decode(a.chunk(euro.subarray(0, split))))
    out.push(decode(b.chunk(bytes('data: {"y":1}\n\n'))))
    out.push(decode(a.chunk(euro.subarray(split))))
    expect(out).toEqual(['', 'data: {"y":1}\n\n', 'data: {"x":"€"}\n\n'])
  })
})

describe('meter window (SPEC §4.9)', () => {
  test('a long stream in chunks of every size: the counts at its end are found, the lines all counted', () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `{"model":"m","response":"${'x'.repeat(i % 97)}","done":false}\n`)
    lines.push('{"model":"m","done":true,"prompt_eval_count":123,"eval_count":3000}\n')
    const all = new TextEncoder().encode(lines.join(''))
    for (const sizes of [[1, 7, 4095, 4096, 4097, 8191, 9000], [3], [5000], [64, 4000, 100]]) {
      const tap = new MeterTap('native')
      let at = 0
      for (let k = 0; at < all.length; k++) {
        const size = sizes[k % sizes.length] as number
        tap.chunk(all.slice(at, at + size))
        at += size
      }
      expect(tap.usage(true)).toEqual({ prompt: 123, completion: 3000, partial: false })
    }
    const cut = new MeterTap('native')
    cut.chunk(all.slice(0, all.length - 60)) // the final line without its `"done":true`
    expect(cut.usage(true)).toEqual({ prompt: null, completion: 3000, partial: true })
  })
})
