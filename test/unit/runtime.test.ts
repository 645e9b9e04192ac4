// The Bun runtime's server settings (STACK.md; Bun's docs: development mode "risks leaking sensitive
// information"). Elysia enables that mode whenever NODE_ENV is not `production`, as under `bun test`.
import { expect, test } from 'bun:test'
import { Elysia } from 'elysia'
import { bunRuntime } from '../../src/runtime/bun.ts'

test('the server never runs in development mode, whatever NODE_ENV says', async () => {
  expect(process.env.NODE_ENV).not.toBe('production')
  const app = new Elysia().get('/', () => 'ok')
  const server = bunRuntime.serve({ app, hostname: '127.0.0.1', port: 0, idleTimeoutS: 0 })
  try {
    expect((app.server as { development: boolean } | null)?.development).toBe(false)
    expect(await (await fetch(`http://127.0.0.1:${server.port}/`)).text()).toBe('ok')
  } finally {
    await server.stop(true)
  }
})
