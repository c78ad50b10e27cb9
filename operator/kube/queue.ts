// A rate-limited work queue modelled on client-go's workqueue: fair (FIFO), stingy (a key added many times while
// it waits is processed once) and never handing one key to two workers at once (a key added while it is being
// processed is marked dirty and queued again when done() is called). Delays (addAfter, addRateLimited) run on a
// heap driven by one timer; the rate limit is the max of a per-key exponential backoff and an overall token bucket,
// like client-go's DefaultControllerRateLimiter.
import { systemClock, type Clock } from "../../core/limits.ts";
import { DURATION_BUCKETS, type Counter, type Gauge, type Histogram, type Registry } from "./metrics.ts";

export interface WorkQueueOptions {
  /** Names the queue in metrics (label `name`). */
  name?: string;
  /** First per-key retry delay, ms (default 5); doubles with every failure. */
  baseDelayMs?: number;
  /** Longest per-key retry delay, ms (default 300000). */
  maxDelayMs?: number;
  /** Overall retry rate of the queue, per second (default 10). */
  qps?: number;
  /** Retries allowed at once above the overall rate (default 100). */
  burst?: number;
  clock?: Clock;
  metrics?: Registry;
}

/** A token bucket that reserves: each call takes a token now or books one in the future and says how long to wait. */
class ReservingBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;
  private readonly burst: number;
  private readonly clock: Clock;
  constructor(qps: number, burst: number, clock: Clock) {
    this.perMs = qps / 1000;
    this.burst = burst;
    this.tokens = burst;
    this.clock = clock;
    this.last = clock.now();
  }
  /** Delay in ms until the reserved token is due (0 when one was free). */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : -this.tokens / this.perMs;
  }
}

interface Delayed<K> {
  due: number;
  seq: number;
  key: K;
}

/** A binary min-heap on (due, seq). */
class DelayHeap<K> {
  private readonly a: Delayed<K>[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Delayed<K> | undefined {
    return this.a[0];
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.due < y.due || (x.due === y.due && x.seq < y.seq);
  }
  private swap(i: number, j: number): void {
    [this.a[i], this.a[j]] = [this.a[j]!, this.a[i]!];
  }
  push(d: Delayed<K>): void {
    this.a.push(d);
    let i = this.a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): Delayed<K> | undefined {
    const top = this.a[0];
    const last = this.a.pop();
    if (this.a.length > 0 && last) {
      this.a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.a.length && this.less(l, m)) m = l;
        if (r < this.a.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

interface QueueMetrics {
  depth: Gauge;
  adds: Counter;
  retries: Counter;
  queueSeconds: Histogram;
  workSeconds: Histogram;
  unfinished: Gauge;
  longest: Gauge;
}

export class WorkQueue<K = string> {
  readonly name: string;
  private readonly queue: K[] = [];
  private head = 0;
  private readonly dirty = new Set<K>();
  private readonly processing = new Map<K, number>();
  private readonly addedAt = new Map<K, number>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  private readonly failures = new Map<K, number>();
  private readonly delayedDue = new Map<K, number>();
  private readonly heap = new DelayHeap<K>();
  private seq = 0;
  private timer: AbortController | undefined;
  private timerDue = Infinity;
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly bucket: ReservingBucket;
  private readonly clock: Clock;
  private readonly m: QueueMetrics | undefined;
  private readonly labels: { name: string };

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? "default";
    this.labels = { name: this.name };
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 300_000;
    this.clock = options.clock ?? systemClock;
    this.bucket = new ReservingBucket(options.qps ?? 10, options.burst ?? 100, this.clock);
    const r = options.metrics;
    if (r) {
      const n = ["name"];
      this.m = {
        depth: r.gauge("workqueue_depth", "Keys waiting in the work queue.", n),
        adds: r.counter("workqueue_adds_total", "Keys added to the work queue.", n),
        retries: r.counter("workqueue_retries_total", "Rate-limited re-adds (retries after a failure).", n),
        queueSeconds: r.histogram("workqueue_queue_duration_seconds", "Time a key waited in the queue before a worker took it.", DURATION_BUCKETS, n),
        workSeconds: r.histogram("workqueue_work_duration_seconds", "Time a worker spent on a key.", DURATION_BUCKETS, n),
        unfinished: r.gauge("workqueue_unfinished_work_seconds", "Seconds of work in progress not yet done (sum over keys being processed).", n),
        longest: r.gauge("workqueue_longest_running_processor_seconds", "Seconds the longest-running key has been processed.", n),
      };
      r.onCollect(() => {
        const now = this.clock.now();
        let sum = 0;
        let longest = 0;
        for (const t of this.processing.values()) {
          sum += now - t;
          longest = Math.max(longest, now - t);
        }
        this.m!.unfinished.set(this.labels, sum / 1000);
        this.m!.longest.set(this.labels, longest / 1000);
      });
      this.m.depth.set(this.labels, 0);
    }
  }

  /** Keys waiting for a worker (delayed keys not included). */
  get length(): number {
    return this.queue.length - this.head;
  }
  /** Keys waiting for their delay to pass. */
  get delayedLength(): number {
    return this.delayedDue.size;
  }
  /** Keys being processed now. */
  get processingLength(): number {
    return this.processing.size;
  }
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private push(key: K): void {
    const w = this.waiters.shift();
    if (w) {
      this.take(key);
      w(key);
      return;
    }
    this.queue.push(key);
    this.m?.depth.set(this.labels, this.length);
  }

  private take(key: K): void {
    const now = this.clock.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    const at = this.addedAt.get(key);
    if (at !== undefined) {
      this.m?.queueSeconds.observe(this.labels, (now - at) / 1000);
      this.addedAt.delete(key);
    }
  }

  /** Queues `key` unless it is already waiting; a key being processed is queued again when done. */
  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    this.m?.adds.inc(this.labels);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `ms`; a key already delayed keeps the earlier of the two times. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) return this.add(key);
    const due = this.clock.now() + ms;
    const current = this.delayedDue.get(key);
    if (current !== undefined && current <= due) return;
    this.delayedDue.set(key, due);
    this.heap.push({ due, seq: this.seq++, key });
    this.schedule();
  }

  /** The delay the rate limiter gives `key` now (and counts the failure). */
  private when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perKey = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n, 62));
    return Math.max(perKey, this.bucket.reserve());
  }

  /** Re-adds `key` after its backoff: the max of a per-key exponential delay and the overall token bucket. */
  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.m?.retries.inc(this.labels);
    this.addAfter(key, this.when(key));
  }

  /** Forgets the key's failures: its next backoff starts at the base delay again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key; waits for one. Undefined once the queue is shut down and no key is waiting. */
  get(): Promise<K | undefined> {
    if (this.length > 0) {
      const key = this.queue[this.head]!;
      this.queue[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.m?.depth.set(this.labels, this.length);
      this.take(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile it is queued again. */
  done(key: K): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.m?.workSeconds.observe(this.labels, (this.clock.now() - started) / 1000);
    if (this.dirty.has(key)) this.push(key);
  }

  /** Refuses new keys, drops delayed ones and wakes waiting workers with undefined. Keys being processed finish. */
  shutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.timer?.abort();
    this.timer = undefined;
    this.heap.clear();
    this.delayedDue.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** (Re)arms the single timer for the earliest delayed key. */
  private schedule(): void {
    const next = this.heap.peek();
    if (!next || this.shuttingDown) return;
    if (this.timer && this.timerDue <= next.due) return;
    this.timer?.abort();
    const ctl = new AbortController();
    this.timer = ctl;
    this.timerDue = next.due;
    this.clock.sleep(Math.max(0, next.due - this.clock.now()), ctl.signal).then(
      () => {
        if (this.timer !== ctl) return;
        this.timer = undefined;
        this.timerDue = Infinity;
        this.fireDue();
        this.schedule();
      },
      () => {
        /* re-armed for an earlier key, or shut down */
      },
    );
  }

  private fireDue(): void {
    const now = this.clock.now();
    for (let d = this.heap.peek(); d && d.due <= now; d = this.heap.peek()) {
      this.heap.pop();
      if (this.delayedDue.get(d.key) !== d.due) continue; // superseded by an earlier time
      this.delayedDue.delete(d.key);
      this.add(d.key);
    }
  }
}
