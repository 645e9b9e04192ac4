// Deno entry (SPEC §8.3): `deno run -A src/main.deno.ts`. The same program, Deno's side of the seam.
import { run } from './cli.ts'
import { denoRuntime } from './runtime/deno.ts'

declare const Deno: { args: string[]; env: { toObject(): Record<string, string> }; stdout: { isTerminal(): boolean } }

await run(Deno.args, Deno.env.toObject(), denoRuntime, Deno.stdout.isTerminal())
