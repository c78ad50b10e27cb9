// Prometheus metrics with no dependency: counters, gauges and histograms with labels, rendered in the text
// exposition format (version 0.0.4). Asking a registry twice for the same name returns the same metric, so
// several informers or queues can share one registry.

export type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; value: S }>();
  abstract readonly type: "counter" | "gauge" | "histogram";
  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!NAME.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not a valid Prometheus name`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith("__") || l === "le") throw new Error(`metric ${name}: invalid label name ${JSON.stringify(l)}`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }
  protected abstract initial(): S;
  protected entry(labels: Labels | undefined): { labels: Labels; value: S } {
    const l = labels ?? {};
    const values: string[] = [];
    for (const n of this.labelNames) {
      const v = l[n];
      if (v === undefined) throw new Error(`metric ${this.name}: label ${n} is missing`);
      values.push(v);
    }
    for (const n of Object.keys(l)) {
      if (!this.labelNames.includes(n)) throw new Error(`metric ${this.name}: unknown label ${n}`);
    }
    const key = values.join("\u0000");
    let e = this.series.get(key);
    if (!e) {
      e = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])), value: this.initial() };
      this.series.set(key, e);
    }
    return e;
  }
  protected labelText(labels: Labels, extra?: [string, string]): string {
    const parts = this.labelNames.map((n) => `${n}="${escapeLabel(labels[n]!)}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return parts.length ? `{${parts.join(",")}}` : "";
  }
  protected abstract samples(out: string[]): void;
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    this.samples(out);
  }
}

export class Counter extends Metric<number> {
  readonly type = "counter";
  protected initial(): number {
    return 0;
  }
  inc(labels?: Labels, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.entry(labels).value += by;
  }
  get(labels?: Labels): number {
    return this.entry(labels).value;
  }
  protected samples(out: string[]): void {
    for (const { labels, value } of this.series.values()) out.push(`${this.name}${this.labelText(labels)} ${formatValue(value)}`);
  }
}

export class Gauge extends Metric<number> {
  readonly type = "gauge";
  protected initial(): number {
    return 0;
  }
  set(labels: Labels | undefined, value: number): void {
    this.entry(labels).value = value;
  }
  inc(labels?: Labels, by = 1): void {
    this.entry(labels).value += by;
  }
  dec(labels?: Labels, by = 1): void {
    this.entry(labels).value -= by;
  }
  get(labels?: Labels): number {
    return this.entry(labels).value;
  }
  protected samples(out: string[]): void {
    for (const { labels, value } of this.series.values()) out.push(`${this.name}${this.labelText(labels)} ${formatValue(value)}`);
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].filter((b) => b !== Infinity).sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => i > 0 && b === sorted[i - 1])) {
      throw new Error(`histogram ${name}: buckets must be distinct numbers`);
    }
    this.buckets = sorted;
  }
  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: Labels | undefined, value: number): void {
    const s = this.entry(labels).value;
    s.sum += value;
    s.count++;
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
  }
  /** Observations so far (for tests and summaries). */
  count(labels?: Labels): number {
    return this.entry(labels).value.count;
  }
  sum(labels?: Labels): number {
    return this.entry(labels).value.sum;
  }
  protected samples(out: string[]): void {
    for (const { labels, value } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += value.counts[i]!;
        out.push(`${this.name}_bucket${this.labelText(labels, ["le", formatValue(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${this.labelText(labels, ["le", "+Inf"])} ${value.count}`);
      out.push(`${this.name}_sum${this.labelText(labels)} ${formatValue(value.sum)}`);
      out.push(`${this.name}_count${this.labelText(labels)} ${value.count}`);
    }
  }
}

/** Latency buckets in seconds, 1 ms to 60 s. */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();
  private readonly collectors: (() => void)[] = [];

  private register<M extends Metric<unknown>>(name: string, make: () => M, type: M["type"], labelNames: readonly string[]): M {
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.type !== type || existing.labelNames.join(",") !== labelNames.join(",")) {
        throw new Error(`metric ${name} is already registered as a ${existing.type} with labels [${existing.labelNames.join(", ")}]`);
      }
      return existing as M;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(name, () => new Counter(name, help, labelNames), "counter", labelNames);
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(name, () => new Gauge(name, help, labelNames), "gauge", labelNames);
  }
  histogram(name: string, help: string, buckets: readonly number[] = DURATION_BUCKETS, labelNames: readonly string[] = []): Histogram {
    return this.register(name, () => new Histogram(name, help, buckets, labelNames), "histogram", labelNames);
  }
  /** Runs `fn` before every render: for gauges computed on scrape (e.g. the age of the oldest item). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }
  /** The Prometheus text exposition of every metric. */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const m of this.metrics.values()) m.render(out);
    return out.join("\n") + "\n";
  }
}
