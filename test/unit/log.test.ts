// SPEC §4.12: one JSON line per request and per notable event, unit-tested.
import { describe, expect, test } from 'bun:test'
import { createLogger } from '../../src/log.ts'

function lines(write: (log: ReturnType<typeof createLogger>) => void): Array<Record<string, unknown>> {
  const out: string[] = []
  const log = createLogger({ level: 'info', format: 'json', sink: (chunk) => out.push(chunk) })
  write(log)
  log.flush()
  const text = out.join('')
  expect(text.endsWith('\n')).toBe(true)
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('log lines (SPEC §4.12)', () => {
  test('time, level and msg come first, then the fields; no fields and empty fields alike', () => {
    const [a, b, c] = lines((log) => {
      log.info('request', { request_id: 'r1', status: 200, model: 'llama3.2', path: '/api/chat\n"quoted"', skipped: undefined })
      log.warn('plain')
      log.error('empty', {})
    })
    expect(Object.keys(a as object)).toEqual(['time', 'level', 'msg', 'request_id', 'status', 'model', 'path'])
    expect(a).toMatchObject({ level: 'info', msg: 'request', status: 200, path: '/api/chat\n"quoted"' })
    expect(new Date((a as { time: string }).time).toISOString()).toBe((a as { time: string }).time)
    expect(b).toMatchObject({ level: 'warn', msg: 'plain' })
    expect(Object.keys(c as object)).toEqual(['time', 'level', 'msg'])
  })

  test('errors are logged by name, message and code, never with their stack', () => {
    const err = Object.assign(new Error('connect refused'), { code: 'ECONNREFUSED' })
    const [line] = lines((log) => log.error('store down', { err }))
    expect(line?.err).toEqual({ name: 'Error', message: 'connect refused', code: 'ECONNREFUSED' })
    expect(JSON.stringify(line)).not.toContain('at ')
  })

  test('below the level nothing is written', () => {
    const out: string[] = []
    const log = createLogger({ level: 'warn', format: 'json', sink: (chunk) => out.push(chunk) })
    log.info('request', { status: 200 })
    log.flush()
    expect(out).toEqual([])
  })
})
