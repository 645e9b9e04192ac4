-- SPEC §4.10: one row per proxied, rejected or admin request. Prompts and outputs are never stored.
-- event_id makes retried batches idempotent (a batch whose commit was not acknowledged is sent again).
create table if not exists audit_events (
  seq               bigserial primary key,
  event_id          uuid not null unique,
  time              timestamptz not null,
  request_id        text not null,
  key_id            text,
  client_ip         text,
  user_agent        text,
  method            text not null,
  path              text not null,
  model             text,
  backend           text,
  status            integer not null,
  outcome           text not null,
  latency_ms        double precision,
  ttfb_ms           double precision,
  prompt_tokens     integer,
  completion_tokens integer,
  tokens_partial    boolean not null default false,
  bytes_in          bigint,
  bytes_out         bigint,
  error             text,
  action            text,
  target            text
);
create index if not exists audit_events_key_time_idx on audit_events (key_id, time desc, seq desc);
create index if not exists audit_events_time_idx on audit_events (time desc, seq desc);
