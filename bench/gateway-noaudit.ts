// Benchmark only: the gateway with its audit batches discarded where the store would take them, to
// show in each run what storing the audit log costs (SPEC §7: "the issue note says where the time
// goes"). Every event is still made, buffered and batched; only the store's encoding, the COPY and
// Postgres's work are left out. Not shipped: there is deliberately no configuration switch that turns
// the audit log off (SPEC §4.10: an event is never silently dropped).
import { run } from '../src/cli.ts'
import { bunRuntime } from '../src/runtime/bun.ts'

await run(Bun.argv.slice(2), process.env, bunRuntime, false, { auditStore: { insertAudit: async () => {} } })
