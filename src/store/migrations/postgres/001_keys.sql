-- SPEC §4.2: API keys. The secret is stored only as an argon2id hash; `id` is public and indexed.
create table if not exists api_keys (
  id             text primary key,
  hash           text not null,
  name           text not null,
  scopes         jsonb not null default '[]',
  allowed_models jsonb not null default '[]',
  limits         jsonb not null default '{}',
  metadata       jsonb not null default '{}',
  expires_at     timestamptz,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  revoked_at     timestamptz,
  last_used_at   timestamptz
);
create index if not exists api_keys_created_idx on api_keys (created_at desc, id desc);
create index if not exists api_keys_name_idx on api_keys (lower(name));
