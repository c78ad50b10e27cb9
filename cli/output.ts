// Result lines: JSON Lines for programs, a progress bar and a summary for people.
import type { TaskOutcome } from "../core/index.ts";

/** The JSON Lines shape of one outcome; field order is part of the CLI contract. */
export function outcomeLine(o: TaskOutcome): string {
  const line: Record<string, unknown> = { id: o.id, graph: o.graph, status: o.status, task: o.task };
  if (o.status === "succeeded") line.result = o.result;
  if (o.saved !== undefined) line.saved = o.saved;
  if (o.status === "failed") line.error = o.error;
  return JSON.stringify(line);
}

/** Buffers writes to a stream and flushes in large chunks; stops quietly when the reader goes away (EPIPE). */
export class BufferedWriter {
  private buf: string[] = [];
  private size = 0;
  private scheduled = false;
  closed = false;
  private readonly stream: NodeJS.WritableStream;
  constructor(stream: NodeJS.WritableStream) {
    this.stream = stream;
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") return;
      this.closed = true;
      this.wakeDrainWaiters();
    });
  }
  write(s: string): void {
    if (this.closed) return;
    this.buf.push(s);
    this.size += s.length;
    if (this.size > 64 * 1024) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (this.buf.length === 0 || this.closed) return;
    const text = this.buf.join("");
    this.buf = [];
    this.size = 0;
    if (!this.stream.write(text) && !this.blocked) {
      // Listen now: the drain may come before anyone asks for it.
      this.blocked = true;
      this.stream.once("drain", () => {
        this.blocked = false;
        this.wakeDrainWaiters();
      });
    }
  }

  /** True while the reader is behind (the stream's buffer is full); producers should wait with drained(). */
  blocked = false;
  private drainWaiters: (() => void)[] = [];

  private wakeDrainWaiters(): void {
    const waiting = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiting) w();
  }

  /** Resolves once the stream has room again (at once when it has). */
  drained(): Promise<void> {
    if (!this.blocked || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
  /** Flushes and resolves once the stream has taken the data. */
  end(): Promise<void> {
    this.flush();
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.stream.write("", () => resolve());
    });
  }
}

/** A one-line progress bar on a terminal (stderr), redrawn at most ten times a second. */
export class ProgressBar {
  private last = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly started = performance.now();
  constructor(stream: NodeJS.WriteStream) {
    this.stream = stream;
  }
  update(done: number, failed: number, submitted: number, inputClosed: boolean, force = false): void {
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const total = Math.max(submitted, 1);
    const filled = inputClosed ? Math.round((done / total) * width) : Math.min(width, Math.round((done / total) * width));
    const rate = done / Math.max((now - this.started) / 1000, 1e-3);
    const of = inputClosed ? `${done}/${submitted}` : `${done}/${submitted}+`;
    this.stream.write(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${of} done, ${failed} failed, ${rate.toFixed(0)} tasks/s \x1b[K`);
  }
  clear(): void {
    this.stream.write("\r\x1b[K");
  }
}

/** A short human-readable rendering of a value, at most `max` characters. */
export function brief(value: unknown, max = 100): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
