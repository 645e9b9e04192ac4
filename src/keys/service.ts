// Key administration (SPEC §4.11), shared by the admin API and the CLI. Plain values in, records out.
import { GatewayError } from '../errors.ts'
import type { Scope } from '../proxy/endpoints.ts'
import { type KeyChanges, type KeyListQuery, type KeyPage, type KeyRecord, keyState, type Limits, type Store } from '../store/store.ts'
import { MODEL_PATTERN, MODEL_PATTERN_DESCRIPTION, SCOPES } from './authz.ts'
import { newKey, parseKey } from './format.ts'
import type { Hasher } from './hasher.ts'

const MODEL_PATTERN_RE = new RegExp(MODEL_PATTERN)

export interface KeyInput {
  readonly name: string
  readonly scopes?: readonly Scope[]
  readonly allowedModels?: readonly string[]
  readonly limits?: Limits
  readonly metadata?: Record<string, unknown>
  readonly expiresAt?: number | null
}

export type KeyPatch = Partial<Omit<KeyInput, 'name'>> & { readonly name?: string }

export interface IssuedKey {
  /** The whole key, shown once. */
  readonly key: string
  readonly record: KeyRecord
}

export class KeyService {
  constructor(
    private readonly store: Store,
    private readonly hasher: Hasher,
    /** Called after every committed change (in-process eviction; Postgres NOTIFY reaches the others). */
    private readonly onChange: (id: string) => Promise<void>,
  ) {}

  async create(input: KeyInput): Promise<IssuedKey> {
    validate(input)
    const now = Date.now()
    // A key born expired is a typo (a wrong year), never useful. An update may still set a past
    // expiry: that expires the key now.
    if (typeof input.expiresAt === 'number' && input.expiresAt <= now)
      throw new GatewayError(
        'bad_request',
        `expires_at ${new Date(input.expiresAt).toISOString()} is in the past; a new key must expire later`,
      )
    const issued = newKey()
    const record: KeyRecord = {
      id: issued.id,
      hash: await this.hasher.hash(issued.secret),
      name: input.name.trim(),
      scopes: dedupe(input.scopes ?? ['inference']),
      allowedModels: dedupe(input.allowedModels ?? []),
      limits: input.limits ?? {},
      metadata: input.metadata ?? {},
      expiresAt: input.expiresAt ?? null,
      createdAt: now,
      updatedAt: now,
      revokedAt: null,
      lastUsedAt: null,
    }
    // A new key is in no cache yet: nothing to evict (an eviction would only drop fills in flight).
    await this.store.insertKey(record)
    return { key: issued.token, record }
  }

  list(query: KeyListQuery): Promise<KeyPage> {
    return this.store.listKeys(query)
  }

  async get(id: string): Promise<KeyRecord> {
    const record = await this.store.getKey(id)
    if (!record) throw notFound(id)
    return record
  }

  async update(id: string, patch: KeyPatch): Promise<KeyRecord> {
    validate(patch)
    const changes: KeyChanges = {
      ...(patch.name !== undefined ? { name: patch.name.trim() } : {}),
      ...(patch.scopes !== undefined ? { scopes: dedupe(patch.scopes) } : {}),
      ...(patch.allowedModels !== undefined ? { allowedModels: dedupe(patch.allowedModels) } : {}),
      ...(patch.limits !== undefined ? { limits: patch.limits } : {}),
      ...(patch.metadata !== undefined ? { metadata: patch.metadata } : {}),
      ...(patch.expiresAt !== undefined ? { expiresAt: patch.expiresAt } : {}),
    }
    const current = await this.get(id)
    if (current.revokedAt !== null) throw new GatewayError('bad_request', `key ${id} is revoked and cannot be changed; create a new key`)
    const updated = await this.store.updateKey(id, changes)
    if (!updated) throw notFound(id)
    await this.onChange(id)
    return updated
  }

  async revoke(id: string): Promise<KeyRecord> {
    const revoked = await this.store.revokeKey(id)
    if (!revoked) throw notFound(id)
    await this.onChange(id)
    return revoked
  }

  /** A new secret for the same id and settings; the old secret stops working at once. */
  async rotate(id: string): Promise<IssuedKey> {
    const current = await this.get(id)
    if (keyState(current) === 'revoked')
      throw new GatewayError('bad_request', `key ${id} is revoked and cannot be rotated; create a new key`)
    const issued = newKey(id)
    const updated = await this.store.updateKey(id, { hash: await this.hasher.hash(issued.secret) })
    if (!updated) throw notFound(id)
    await this.onChange(id)
    return { key: issued.token, record: updated }
  }

  /**
   * BOOTSTRAP_ADMIN_KEY: make sure this exact admin key exists. A revoked bootstrap key stays revoked
   * (revocation wins; change the variable to issue another).
   */
  async ensureBootstrap(token: string): Promise<'created' | 'present' | 'updated' | 'revoked'> {
    const parsed = parseKey(token)
    if (!parsed) throw new GatewayError('bad_request', 'BOOTSTRAP_ADMIN_KEY is not of the form nnz_<id>_<secret>')
    const existing = await this.store.getKey(parsed.id)
    if (!existing) {
      const now = Date.now()
      const inserted = this.store.insertKey({
        id: parsed.id,
        hash: await this.hasher.hash(parsed.secret),
        name: 'bootstrap admin',
        scopes: ['admin'],
        allowedModels: [],
        limits: {},
        metadata: { source: 'BOOTSTRAP_ADMIN_KEY' },
        expiresAt: null,
        createdAt: now,
        updatedAt: now,
        revokedAt: null,
        lastUsedAt: null,
      })
      // Replicas starting together race to insert it: losing that race means it is present.
      return inserted.then(
        () => 'created' as const,
        async (err) => {
          if (await this.store.getKey(parsed.id)) return 'present' as const
          throw err
        },
      )
    }
    if (existing.revokedAt !== null) return 'revoked'
    if (await this.hasher.verify(existing.hash, parsed.secret)) return 'present'
    await this.store.updateKey(parsed.id, { hash: await this.hasher.hash(parsed.secret) })
    await this.onChange(parsed.id)
    return 'updated'
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `no key with id '${id}'`)
}

function dedupe<T>(values: readonly T[]): T[] {
  return [...new Set(values)]
}

/** Rules the schemas cannot state; shared by the admin API and the CLI. */
function validate(input: KeyPatch): void {
  if (input.name !== undefined && input.name.trim() === '') throw new GatewayError('bad_request', 'name must not be empty')
  for (const scope of input.scopes ?? []) {
    if (!SCOPES.includes(scope)) throw new GatewayError('bad_request', `unknown scope '${scope}'; use ${SCOPES.join(', ')}`)
  }
  if (input.scopes !== undefined && input.scopes.length === 0)
    throw new GatewayError('bad_request', `a key needs at least one scope (${SCOPES.join(', ')})`)
  for (const [name, value] of Object.entries(input.limits ?? {})) {
    if (!['rpm', 'tpm', 'max_concurrency'].includes(name))
      throw new GatewayError('bad_request', `unknown limit '${name}'; use rpm, tpm, max_concurrency`)
    if (value !== undefined && value !== null && (!Number.isInteger(value) || value < 1)) {
      throw new GatewayError('bad_request', `limit ${name} must be a whole number of at least 1`)
    }
  }
  for (const pattern of input.allowedModels ?? []) {
    if (!MODEL_PATTERN_RE.test(pattern))
      throw new GatewayError('bad_request', `allowed model '${pattern}' is not ${MODEL_PATTERN_DESCRIPTION}; list each model on its own`)
  }
  if (input.expiresAt !== undefined && input.expiresAt !== null && !Number.isFinite(input.expiresAt)) {
    throw new GatewayError('bad_request', 'expires_at must be an ISO 8601 date-time')
  }
}
