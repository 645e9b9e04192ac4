// SPEC §4.12: Prometheus text exposition (format 0.0.4). Label values are bounded by the callers:
// route templates, status codes, backend names, never raw paths or key secrets.

type Labels = Record<string, string>

/** Reads a metric's values at scrape time from where they are kept (backend state, the process's CPU time). */
type Collect = () => Array<[Labels, number]>

abstract class Metric {
  protected readonly series = new Map<string, { labels: Labels; value: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly collect?: Collect,
  ) {}

  protected entry(labels: Labels) {
    const key = labelKey(labels)
    let e = this.series.get(key)
    if (!e) {
      e = { labels, value: 0 }
      this.series.set(key, e)
    }
    return e
  }

  get(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.value ?? 0
  }

  render(): string {
    if (this.collect) for (const [labels, value] of this.collect()) this.entry(labels).value = value
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    for (const { labels, value } of this.series.values()) lines.push(`${this.name}${formatLabels(labels)} ${value}`)
    return lines.join('\n')
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string, collect?: Collect) {
    super(name, help, 'counter', collect)
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by
  }
  /** One series, looked up once: a hot path whose labels are known ahead skips the lookup per call. */
  bind(labels: Labels): (by?: number) => void {
    const e = this.entry(labels)
    return (by = 1) => {
      e.value += by
    }
  }
}

export class Gauge extends Metric {
  constructor(name: string, help: string, collect?: Collect) {
    super(name, help, 'gauge', collect)
  }
  set(labels: Labels, value: number): void {
    this.entry(labels).value = value
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  /** One series, looked up once (see Counter.bind): observing adds to it. */
  bind(labels: Labels): (value: number) => void {
    const key = labelKey(labels)
    let s = this.series.get(key)
    if (!s) {
      s = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }
      this.series.set(key, s)
    }
    const series = s
    return (value) => this.add(series, value)
  }

  private add(s: { counts: number[]; sum: number; count: number }, value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] as number) + 1
    s.sum += value
    s.count++
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) => {
        lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: String(le) })} ${s.counts[i]}`)
      })
      lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: '+Inf' })} ${s.count}`)
      lines.push(`${this.name}_sum${formatLabels(s.labels)} ${s.sum}`)
      lines.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`)
    }
    return lines.join('\n')
  }
}

export class Registry {
  private readonly metrics: Array<{ render(): string }> = []
  counter(name: string, help: string, collect?: Collect): Counter {
    return this.add(new Counter(name, help, collect))
  }
  gauge(name: string, help: string, collect?: Collect): Gauge {
    return this.add(new Gauge(name, help, collect))
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets))
  }
  private add<M extends { render(): string }>(metric: M): M {
    this.metrics.push(metric)
    return metric
  }
  render(): string {
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`
  }
}

function labelKey(labels: Labels): string {
  let key = ''
  for (const k in labels) key += `${k}=${labels[k]}\u0001`
  return key
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}
