-- SPEC §4.10: one row per proxied, rejected or admin request. Prompts and outputs are never stored.
create table if not exists audit_events (
  seq               integer primary key autoincrement,
  event_id          text not null unique,
  time              integer not null,
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
  latency_ms        real,
  ttfb_ms           real,
  prompt_tokens     integer,
  completion_tokens integer,
  tokens_partial    integer not null default 0,
  bytes_in          integer,
  bytes_out         integer,
  error             text,
  action            text,
  target            text
);
create index if not exists audit_events_key_time_idx on audit_events (key_id, time desc, seq desc);
create index if not exists audit_events_time_idx on audit_events (time desc, seq desc);
