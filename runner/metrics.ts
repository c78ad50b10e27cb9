// Per-node counters of a runner, served as Prometheus text with health endpoints.
import { createServer, type Server } from "node:http";

/**
 * How a task's turn at a node ended: finished (its output or failure is recorded), or handed back for another
 * delivery because something outside the job failed (NATS unavailable, a payload missing).
 */
export type TaskEnd = "succeeded" | "failed" | "handed-back";

interface NodeMetrics {
  processed: number;
  failed: number;
  handedBack: number;
  inFlight: number;
  durationSum: number;
  buckets: number[];
}

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120];

export class RunnerMetrics {
  private readonly nodes = new Map<string, NodeMetrics>();
  private key(graph: string, node: string): string {
    return `${graph}\u0000${node}`;
  }
  private get(graph: string, node: string): NodeMetrics {
    const k = this.key(graph, node);
    let m = this.nodes.get(k);
    if (!m) {
      m = { processed: 0, failed: 0, handedBack: 0, inFlight: 0, durationSum: 0, buckets: new Array(BOUNDS.length + 1).fill(0) };
      this.nodes.set(k, m);
    }
    return m;
  }
  started(graph: string, node: string): void {
    this.get(graph, node).inFlight++;
  }
  finished(graph: string, node: string, seconds: number, end: TaskEnd): void {
    const m = this.get(graph, node);
    m.inFlight--;
    if (end === "handed-back") {
      // Not an outcome: the task comes back, and is counted when it finishes.
      m.handedBack++;
      return;
    }
    m.processed++;
    if (end === "failed") m.failed++;
    m.durationSum += seconds;
    let i = BOUNDS.findIndex((b) => seconds <= b);
    if (i < 0) i = BOUNDS.length;
    m.buckets[i]!++;
  }
  /** Prometheus text exposition format. */
  render(): string {
    const lines = [
      "# HELP jobchain_node_processed_total Tasks a node finished (succeeded or failed), alone or in batch messages.",
      "# TYPE jobchain_node_processed_total counter",
      "# HELP jobchain_node_failed_total Tasks that failed at this node (or in the nodes it ran in memory after it).",
      "# TYPE jobchain_node_failed_total counter",
      "# HELP jobchain_node_handed_back_total Tasks a node handed back for another delivery because something outside the job failed (NATS unavailable, a payload missing).",
      "# TYPE jobchain_node_handed_back_total counter",
      "# HELP jobchain_node_in_flight Tasks a node is working on now.",
      "# TYPE jobchain_node_in_flight gauge",
      "# HELP jobchain_node_duration_seconds Time from receipt of a task's message to the task's output being stored.",
      "# TYPE jobchain_node_duration_seconds histogram",
    ];
    for (const [k, m] of this.nodes) {
      const [graph, node] = k.split("\u0000") as [string, string];
      const l = `graph="${graph}",node="${node}"`;
      lines.push(`jobchain_node_processed_total{${l}} ${m.processed}`);
      lines.push(`jobchain_node_failed_total{${l}} ${m.failed}`);
      lines.push(`jobchain_node_handed_back_total{${l}} ${m.handedBack}`);
      lines.push(`jobchain_node_in_flight{${l}} ${m.inFlight}`);
      let cum = 0;
      BOUNDS.forEach((b, i) => {
        cum += m.buckets[i]!;
        lines.push(`jobchain_node_duration_seconds_bucket{${l},le="${b}"} ${cum}`);
      });
      cum += m.buckets[BOUNDS.length]!;
      lines.push(`jobchain_node_duration_seconds_bucket{${l},le="+Inf"} ${cum}`);
      lines.push(`jobchain_node_duration_seconds_sum{${l}} ${m.durationSum}`);
      lines.push(`jobchain_node_duration_seconds_count{${l}} ${m.processed}`);
    }
    return lines.join("\n") + "\n";
  }
}

/** Serves /metrics, /healthz (process alive) and /readyz (consuming) on `port` (0 picks a free one). */
export function serveMetrics(metrics: RunnerMetrics, port: number, ready: () => boolean): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(metrics.render());
    } else if (req.url === "/healthz") {
      res.writeHead(200).end("ok\n");
    } else if (req.url === "/readyz") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503).end(ok ? "ready\n" : "not ready\n");
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve(server));
  });
}
