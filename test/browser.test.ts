// SPEC §4.13 as a person uses it: headless Chromium opens /docs on the compiled binary, with nothing
// reachable beyond loopback, sees the operations, authorises with a key and executes GET /admin/keys
// from the page. The screenshot is kept in test-artifacts/.
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { BUN, type GatewayProcess, startGateway } from './helpers/gateway.ts'

const ROOT = join(import.meta.dir, '..')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const fake = new FakeOllama()
let gw: GatewayProcess

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`the browser test needs Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`)
  const build = Bun.spawnSync([BUN, join(ROOT, 'scripts/build.ts')], { cwd: ROOT })
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`)
  const dir = mkdtempSync(join(tmpdir(), 'nnz-browser-'))
  copyFileSync(join(ROOT, 'dist/neuronetz-gateway'), join(dir, 'neuronetz-gateway'))
  fake.start()
  gw = await startGateway({
    command: [join(dir, 'neuronetz-gateway')],
    cwd: dir,
    env: { OLLAMA_BASE_URL: fake.url, DATA_DIR: join(dir, 'data') },
  })
}, 60_000)
afterAll(async () => {
  await gw?.stop()
  await fake.stop()
}, 30_000)

test('Swagger UI on the binary: operations listed, Authorize with a key, GET /admin/keys executed', async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  })
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } })
    const hosts = new Set<string>()
    page.on('request', (r) => {
      hosts.add(new URL(r.url()).host)
    })
    await page.goto(`${gw.url}/docs`)
    await page.locator('.opblock').first().waitFor({ timeout: 20_000 })
    expect(await page.locator('.opblock').count()).toBeGreaterThan(20)
    expect(await page.locator('.opblock-summary-path', { hasText: '/api/chat' }).count()).toBeGreaterThan(0)

    await page.getByRole('button', { name: 'Authorize' }).first().click()
    await page.locator('.modal-ux input[type=text], .modal-ux input[type=password]').first().fill(gw.adminKey)
    await page.locator('.modal-ux .auth-btn-wrapper button.authorize').click()
    await page.locator('.modal-ux button.btn-done').click()

    const op = page.locator('#operations-admin-getAdminKeys')
    await op.locator('.opblock-summary').click()
    await op.getByRole('button', { name: 'Execute' }).click()
    const status = op.locator('.live-responses-table .response .response-col_status').first()
    await status.waitFor({ timeout: 10_000 })
    expect((await status.innerText()).trim()).toBe('200')
    expect(await op.locator('.live-responses-table .microlight').first().innerText()).toContain('"items"')

    await status.scrollIntoViewIfNeeded()
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true })
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'swagger-ui.png'), fullPage: false })
    // Nothing but the gateway itself was contacted.
    expect([...hosts]).toEqual([`127.0.0.1:${gw.port}`])
  } finally {
    await browser.close()
  }
}, 60_000)
