// CLI twins of the admin API (SPEC §4.11) for bootstrap and scripts, acting on the configured store:
//   keys create --name N [--scopes a,b] [--models p,q] [--rpm N] [--tpm N] [--max-concurrency N]
//               [--expires-in-days N | --expires-at ISO] [--metadata JSON] [--json]
//   keys list [--name N] [--state active|revoked|expired] [--limit N] [--json]
//   keys revoke ID [--json]      keys rotate ID [--json]      migrate
import type { Config } from '../config.ts'
import { GatewayError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { Scope } from '../proxy/endpoints.ts'
import { createHasher, openStore } from '../services.ts'
import type { KeyState, Limits } from '../store/store.ts'
import { keyView } from './present.ts'
import { type KeyPatch, KeyService } from './service.ts'

/** The options each subcommand takes, so the remaining flags can be read as configuration. */
export const COMMAND_OPTIONS: Record<string, { values: readonly string[]; switches: readonly string[] }> = {
  create: {
    values: ['name', 'scopes', 'models', 'rpm', 'tpm', 'max-concurrency', 'expires-in-days', 'expires-at', 'metadata'],
    switches: ['json'],
  },
  list: { values: ['name', 'state', 'limit'], switches: ['json'] },
  revoke: { values: [], switches: ['json'] },
  rotate: { values: [], switches: ['json'] },
}

export interface Parsed {
  readonly positional: string[]
  readonly options: Record<string, string>
  readonly rest: string[]
}

/** Splits a subcommand's own options from the configuration flags. */
export function splitOptions(args: readonly string[], spec: { values: readonly string[]; switches: readonly string[] }): Parsed {
  const positional: string[] = []
  const options: Record<string, string> = {}
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    if (spec.switches.includes(name)) options[name] = 'true'
    else if (spec.values.includes(name)) options[name] = eq === -1 ? (args[++i] ?? '') : arg.slice(eq + 1)
    else {
      rest.push(arg)
      if (eq === -1 && args[i + 1] !== undefined && !(args[i + 1] as string).startsWith('--')) rest.push(args[++i] as string)
    }
  }
  return { positional, options, rest }
}

const list = (v?: string) =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)

function positiveInt(name: string, v?: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new GatewayError('bad_request', `--${name} must be a whole number of at least 1, not '${v}'`)
  return n
}

function patchFrom(o: Record<string, string>): KeyPatch {
  const limits: Record<string, number> = {}
  for (const [flag, limit] of [
    ['rpm', 'rpm'],
    ['tpm', 'tpm'],
    ['max-concurrency', 'max_concurrency'],
  ] as const) {
    const value = positiveInt(flag, o[flag])
    if (value !== undefined) limits[limit] = value
  }
  let expiresAt: number | undefined
  if (o['expires-in-days'] !== undefined)
    expiresAt = Date.now() + (positiveInt('expires-in-days', o['expires-in-days']) as number) * 86_400_000
  if (o['expires-at'] !== undefined) {
    expiresAt = Date.parse(o['expires-at'])
    if (Number.isNaN(expiresAt)) throw new GatewayError('bad_request', `--expires-at '${o['expires-at']}' is not an ISO 8601 date-time`)
  }
  let metadata: Record<string, unknown> | undefined
  if (o.metadata !== undefined) {
    try {
      metadata = JSON.parse(o.metadata)
    } catch {
      throw new GatewayError('bad_request', '--metadata must be a JSON object')
    }
  }
  const scopes = list(o.scopes) as Scope[] | undefined
  const models = list(o.models)
  return {
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(scopes ? { scopes } : {}),
    ...(models ? { allowedModels: models } : {}),
    ...(Object.keys(limits).length ? { limits: limits as Limits } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(metadata ? { metadata } : {}),
  }
}

/** Runs one subcommand; returns the exit code. */
export async function runKeysCommand(
  command: string,
  parsed: Parsed,
  config: Config,
  log: Logger,
  out: (text: string) => void,
): Promise<number> {
  const store = openStore(config, log)
  try {
    await store.migrate()
    if (command === 'migrate') {
      out(`migrations applied (${store.kind})\n`)
      return 0
    }
    const keys = new KeyService(store, createHasher(config), async () => {})
    const json = parsed.options.json === 'true'
    const [id] = parsed.positional
    switch (command) {
      case 'create': {
        const patch = patchFrom(parsed.options)
        if (!patch.name) throw new GatewayError('bad_request', 'keys create needs --name')
        const issued = await keys.create({ ...patch, name: patch.name })
        if (json) out(`${JSON.stringify({ key: issued.key, ...keyView(issued.record) })}\n`)
        else
          out(
            `Created key ${issued.record.id} (${issued.record.name}; scopes ${issued.record.scopes.join(', ')}).\nStore it now, it is not shown again:\n\n  ${issued.key}\n\n`,
          )
        return 0
      }
      case 'list': {
        const state = parsed.options.state as KeyState | undefined
        if (state && !['active', 'revoked', 'expired'].includes(state))
          throw new GatewayError('bad_request', '--state must be active, revoked or expired')
        const page = await keys.list({
          limit: positiveInt('limit', parsed.options.limit) ?? 100,
          ...(parsed.options.name ? { name: parsed.options.name } : {}),
          ...(state ? { state } : {}),
        })
        const views = page.items.map(keyView)
        if (json) out(`${JSON.stringify(views)}\n`)
        else {
          out(`${'ID'.padEnd(14)}${'STATE'.padEnd(9)}${'SCOPES'.padEnd(30)}${'LAST USED'.padEnd(26)}NAME\n`)
          for (const v of views)
            out(`${v.id.padEnd(14)}${v.state.padEnd(9)}${v.scopes.join(',').padEnd(30)}${(v.last_used_at ?? '-').padEnd(26)}${v.name}\n`)
        }
        return 0
      }
      case 'revoke':
      case 'rotate': {
        if (!id) throw new GatewayError('bad_request', `keys ${command} needs a key id`)
        if (command === 'revoke') {
          const record = await keys.revoke(id)
          out(json ? `${JSON.stringify(keyView(record))}\n` : `Revoked key ${record.id} (${record.name}).\n`)
        } else {
          const issued = await keys.rotate(id)
          out(
            json
              ? `${JSON.stringify({ key: issued.key, ...keyView(issued.record) })}\n`
              : `Rotated key ${id}; the old secret no longer works. New key, shown once:\n\n  ${issued.key}\n\n`,
          )
        }
        return 0
      }
      default:
        throw new GatewayError(
          'bad_request',
          command
            ? `unknown command 'keys ${command}'; use create, list, revoke or rotate`
            : 'keys needs a command: create, list, revoke or rotate (see --help)',
        )
    }
  } finally {
    await store.close()
  }
}
