// SPEC §4.10: admin actions and rejected admin requests are audit events too.
import { requestIdOf } from '../proxy/headers.ts'
import type { Services } from '../services.ts'
import { type AuditOutcome, newEventId } from './event.ts'

export interface AdminEventInput {
  readonly request: Request
  readonly status: number
  readonly outcome: AuditOutcome
  readonly keyId: string | null
  readonly action?: string
  readonly target?: string
  readonly error?: string
}

export function recordAdminEvent(services: Services, input: AdminEventInput): void {
  const url = new URL(input.request.url)
  const now = Date.now()
  services.audit.record({
    event_id: newEventId(now),
    time: now,
    request_id: requestIdOf(input.request),
    key_id: input.keyId,
    client_ip: services.clientIp(input.request),
    user_agent: input.request.headers.get('user-agent'),
    method: input.request.method,
    path: url.pathname,
    model: null,
    backend: null,
    status: input.status,
    outcome: input.outcome,
    latency_ms: null,
    ttfb_ms: null,
    prompt_tokens: null,
    completion_tokens: null,
    tokens_partial: false,
    bytes_in: null,
    bytes_out: null,
    error: input.error ?? null,
    action: input.action ?? null,
    target: input.target ?? null,
  })
}
