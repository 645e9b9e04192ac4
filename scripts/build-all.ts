// Release builds (SPEC §8.1): one binary per platform, each with its own platform's argon2 addon,
// and SHA-256 sums.   bun run build:all   →   dist/neuronetz-gateway-<os>-<arch> + dist/SHA256SUMS
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dir, '..')
const TARGETS = [
  { os: 'linux', cpu: 'x64', target: 'bun-linux-x64' },
  { os: 'linux', cpu: 'arm64', target: 'bun-linux-arm64' },
  { os: 'darwin', cpu: 'arm64', target: 'bun-darwin-arm64' },
] as const

function run(cmd: string[]): void {
  const proc = Bun.spawnSync(cmd, { cwd: root, stdout: 'inherit', stderr: 'inherit' })
  if (proc.exitCode !== 0) throw new Error(`failed: ${cmd.join(' ')}`)
}

const sums: string[] = []
for (const t of TARGETS) {
  // The argon2 package loads a per-platform addon chosen at run time: install that platform's one so
  // the bundler embeds it. --no-save leaves package.json and the lockfile alone.
  run([process.execPath, 'install', `--os=${t.os}`, `--cpu=${t.cpu}`, '--no-save'])
  const name = `neuronetz-gateway-${t.os}-${t.cpu}`
  run([process.execPath, join(root, 'scripts', 'build.ts'), '--target', t.target, '--outfile', join(root, 'dist', name)])
  sums.push(
    `${createHash('sha256')
      .update(readFileSync(join(root, 'dist', name)))
      .digest('hex')}  ${name}`,
  )
}
writeFileSync(join(root, 'dist', 'SHA256SUMS'), `${sums.join('\n')}\n`)
process.stdout.write(`${sums.join('\n')}\n`)
