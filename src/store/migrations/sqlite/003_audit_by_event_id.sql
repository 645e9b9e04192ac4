-- SPEC §4.10, §7: audit events are keyed, sorted and paged by event_id alone, in a table clustered on
-- it (WITHOUT ROWID). A UUID v7 minted from the event's own time sorts as the time does, so the rowid
-- `seq` and the (time, seq) indexes go: one index besides the table instead of three.
-- Events stored before ids were time-ordered (version 4) get a v7 id from their time, keeping their
-- random bits, so that they sort and range correctly too.
create table audit_events_v3 (
  event_id          text primary key,
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
) without rowid;
insert or ignore into audit_events_v3
select
  case when substr(event_id, 15, 1) = '7' then event_id
       else printf('%08x-%04x-7', time >> 16, time & 65535) || substr(event_id, 16) end,
  time, request_id, key_id, client_ip, user_agent, method, path, model, backend, status, outcome, latency_ms, ttfb_ms,
  prompt_tokens, completion_tokens, tokens_partial, bytes_in, bytes_out, error, action, target
from audit_events;
drop table audit_events;
alter table audit_events_v3 rename to audit_events;
create index audit_events_key_idx on audit_events (key_id, event_id);
