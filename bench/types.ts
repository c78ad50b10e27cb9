/** One measured figure. Every row is measured in the same `make bench` run; nothing is copied in. */
export interface BenchRow {
  /** What was measured, e.g. "embedded 3-job linear, 200k tasks". */
  name: string;
  /** The measured value. */
  value: number;
  /** Unit of `value`, e.g. "tasks/s", "ms", "MB". */
  unit: string;
  /** The target from the design brief, when there is one, e.g. ">= 250000". */
  target?: string;
  /** Ratios to baselines and other context, e.g. "0.41x bare Promise chain". */
  note?: string;
  /** Whether the target was met (undefined when there is no target). */
  met?: boolean;
}

/** A group of measurements; each file in bench/suites/ default-exports one. */
export interface BenchSuite {
  name: string;
  /** Rows in display order. Throwing marks the whole suite as failed in the table (the other suites still run). */
  run(): Promise<BenchRow[]>;
}
