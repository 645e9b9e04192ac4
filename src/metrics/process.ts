// The series every Prometheus client library exports about its process (CPU, memory, file descriptors,
// start time), under the standard names so existing dashboards and alerts read them, and the gateway's
// build. All are read at scrape time: nothing on the request path.
import { readdirSync, readFileSync } from 'node:fs'
import type { Registry } from './registry.ts'

export interface Build {
  readonly version: string
  readonly commit: string
  readonly runtime: string
}

export function registerProcessMetrics(registry: Registry, build: Build, startedAtMs = Date.now()): void {
  registry.gauge('nnz_build_info', 'The running build: version, commit and runtime (always 1).', () => [[{ ...build }, 1]])
  registry.counter('process_cpu_seconds_total', 'User and system CPU time of the process (all threads), in seconds.', () => {
    const { user, system } = process.cpuUsage()
    return [[{}, (user + system) / 1e6]]
  })
  registry.gauge('process_resident_memory_bytes', 'Resident set size of the process, in bytes.', () => [[{}, process.memoryUsage.rss()]])
  registry.gauge('process_start_time_seconds', 'When the process started, in seconds since the Unix epoch.', () => [
    [{}, Math.floor(startedAtMs / 1000)],
  ])
  // Linux only: elsewhere there is no /proc and these two series are left out.
  registry.gauge('process_open_fds', 'File descriptors the process holds open (sockets included).', () => {
    const open = openFds()
    return open === undefined ? [] : [[{}, open]]
  })
  registry.gauge('process_max_fds', 'The limit on open file descriptors (RLIMIT_NOFILE).', () => {
    const max = maxFds()
    return max === undefined ? [] : [[{}, max]]
  })
}

function openFds(): number | undefined {
  try {
    // The listing's own descriptor is in it.
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined
  }
}

function maxFds(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft)
  } catch {
    return undefined
  }
}
