-- SPEC §4.2: API keys. Times are epoch milliseconds; JSON columns hold text.
create table if not exists api_keys (
  id             text primary key,
  hash           text not null,
  name           text not null,
  scopes         text not null default '[]',
  allowed_models text not null default '[]',
  limits         text not null default '{}',
  metadata       text not null default '{}',
  expires_at     integer,
  created_at     integer not null,
  updated_at     integer not null,
  revoked_at     integer,
  last_used_at   integer
);
create index if not exists api_keys_created_idx on api_keys (created_at desc, id desc);
create index if not exists api_keys_name_idx on api_keys (lower(name));
