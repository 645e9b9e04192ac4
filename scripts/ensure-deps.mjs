// `npm start` and `npm test` on a fresh clone: install the pinned toolchain (Bun, Deno) and packages
// from the lockfile first, so each is one command on a machine with only Node.js and npm.
import { execSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'

const marker = 'node_modules/.package-lock.json'
const stale =
  !existsSync('node_modules/.bin/bun') || !existsSync(marker) || statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs
if (stale) {
  process.stderr.write('Installing dependencies from package-lock.json (npm ci)...\n')
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' })
}
