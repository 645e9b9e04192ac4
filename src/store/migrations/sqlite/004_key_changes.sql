-- SPEC §4.2, §4.5: a counter of changes to API keys, kept by triggers, so that a gateway can tell when
-- another process (the CLI) changed a key. SQLite's data_version cannot tell that alone any more: it
-- also moves for every commit of the gateway's own audit thread, a connection of its own. Use times
-- (last_used_at) do not count.
create table if not exists key_changes (
  id integer primary key check (id = 1),
  n  integer not null
);
insert or ignore into key_changes (id, n) values (1, 0);
create trigger if not exists api_keys_changes_insert after insert on api_keys
begin update key_changes set n = n + 1 where id = 1; end;
create trigger if not exists api_keys_changes_delete after delete on api_keys
begin update key_changes set n = n + 1 where id = 1; end;
create trigger if not exists api_keys_changes_update
after update of hash, name, scopes, allowed_models, limits, metadata, expires_at, updated_at, revoked_at on api_keys
begin update key_changes set n = n + 1 where id = 1; end;
