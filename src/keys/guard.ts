// Authentication plus one scope, for the gateway's own routes (admin API, metrics).
import { Elysia, t } from 'elysia'
import { GatewayError } from '../errors.ts'
import { readJsonBody } from '../proxy/body.ts'
import type { Scope } from '../proxy/endpoints.ts'
import { requestIdOf } from '../proxy/headers.ts'
import type { Services } from '../services.ts'
import type { KeyRecord } from '../store/store.ts'
import { rememberBody } from '../validation.ts'
import { hasScope } from './authz.ts'

/** The admin API's error body (SPEC §5), for the routes' documented responses. */
export const AdminError = t.Object({ error: t.Object({ code: t.String(), message: t.String(), request_id: t.String() }) })

export async function requireScope(services: Services, request: Request, scope: Scope): Promise<KeyRecord> {
  const key = await services.auth.authenticate(request.headers, services.clientIp(request))
  if (!hasScope(key, scope)) throw new GatewayError('forbidden', `API key lacks the '${scope}' scope`)
  return key
}

/** Stands in for a body until the caller's key is checked (see adminPlugin). */
const UNREAD = Symbol('admin body not read yet')

/**
 * The start of every /admin plugin (SPEC §4.11). The key is checked first (SPEC §4.3): a caller
 * without a valid admin key gets its 401 or 403, and its audit event (SPEC §4.10), whatever it sent,
 * and the body is not read for it. So Elysia's parser is replaced by a marker, and `derive`, which runs
 * before validation, checks the key, then reads the body: bounded by MAX_BODY_MB (SPEC §6), as JSON
 * whatever its content type (`curl -d` sends a form type), every fault a clear 400 (SPEC §5).
 */
export function adminPlugin(services: Services, name: string) {
  return new Elysia({ name, prefix: '/admin' })
    .onParse(() => UNREAD)
    .derive(async (context) => {
      const { request, set } = context
      set.headers['x-request-id'] = requestIdOf(request)
      const admin = await requireScope(services, request, 'admin')
      if (context.body === UNREAD) {
        const body = context as { body: unknown }
        body.body = hasBody(request.headers) ? (await readJsonBody(request, services.config.maxBodyBytes)).json : undefined
        rememberBody(request, body.body)
      }
      return { admin }
    })
}

/** RFC 9112 §6.3: a request has a body when it declares a length above zero or a transfer coding. */
function hasBody(headers: Headers): boolean {
  const length = headers.get('content-length')
  return length === null ? headers.has('transfer-encoding') : length !== '0'
}
