// A plausible audit event (SPEC §4.10) for the store tests and the audit benchmark.
import { type AuditEvent, newEventId } from '../../src/audit/event.ts'

/** Event number `i` at `time` (epoch ms): a successful metered chat, with `fields` changed. */
export function sampleAuditEvent(i: number, time: number, fields: Partial<AuditEvent> = {}): AuditEvent {
  return {
    event_id: newEventId(time),
    time,
    request_id: `req-${i}`,
    key_id: 'k_sample',
    client_ip: '192.0.2.7',
    user_agent: 'test',
    method: 'POST',
    path: '/api/chat',
    model: 'llama3.2',
    backend: 'default',
    status: 200,
    outcome: 'ok',
    latency_ms: 12.25,
    ttfb_ms: 3.5,
    prompt_tokens: 7,
    completion_tokens: 3,
    tokens_partial: false,
    bytes_in: 120,
    bytes_out: 900,
    error: null,
    action: null,
    target: null,
    ...fields,
  }
}
