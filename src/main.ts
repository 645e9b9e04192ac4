// Bun entry: the only file that reads the process environment and arguments.
import { run } from './cli.ts'
import { bunRuntime } from './runtime/bun.ts'

await run(Bun.argv.slice(2), process.env, bunRuntime, Boolean(process.stdout.isTTY))
