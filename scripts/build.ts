// SPEC §8.1: `bun run build` → dist/neuronetz-gateway, one executable that runs with no node_modules.
// `bun run build -- --target bun-linux-arm64 --outfile dist/x` builds for another platform.

import { join } from 'node:path'
import { $ } from 'bun'

const root = join(import.meta.dir, '..')
const args = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name)
  return i === -1 ? fallback : (args[i + 1] ?? fallback)
}
const target = option('--target', '')
const outfile = option('--outfile', join(root, 'dist', 'neuronetz-gateway'))
const commit = (await $`git -C ${root} rev-parse --short HEAD`.nothrow().quiet().text()).trim() || 'unknown'

const cmd = [
  process.execPath,
  'build',
  '--compile',
  '--minify',
  '--sourcemap=none',
  // STACK: Elysia prints verbose validation errors unless NODE_ENV is production.
  '--define',
  'process.env.NODE_ENV="production"',
  '--define',
  `__BUILD_COMMIT__=${JSON.stringify(commit)}`,
  ...(target ? [`--target=${target}`] : []),
  join(root, 'src', 'main.ts'),
  // The embedded store's audit thread, a second entry point (services.ts makes its URL).
  join(root, 'src', 'store', 'sqlite-audit.worker.ts'),
  '--outfile',
  outfile,
]
const proc = Bun.spawnSync(cmd, { cwd: root, stdout: 'inherit', stderr: 'inherit' })
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1)
process.stdout.write(`built ${outfile} (${commit}${target ? `, ${target}` : ''})\n`)
