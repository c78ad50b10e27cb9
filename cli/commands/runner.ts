import { hostname } from "node:os";
import { ConfigError, formatProblem, instancesNamed, instantiate, setupTracing } from "../../core/index.ts";
import { Runner, writeRunnerReport } from "../../runner/index.ts";
import { parse, positiveInt } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { ABANDON_GRACE_MS, configFlags, loadFromArgs, warnAbandoned } from "./common.ts";
import { NATS_USAGE, REPLICAS_USAGE, busFlags, busOptions, connectFromFlags, natsFlags } from "./nats-flags.ts";

export const usage = `usage: jobchain runner [CONFIG] [--graph ID]... [--nodes a,b | --pool NAME] [--nats URL] [--concurrency N]
                       [--forward-batch N] [--metrics-port P] [--jobs DIR]... [--ack-wait S] [--max-deliver N] [--drain-timeout S]
                       [--replicas N]

Serves graph nodes over NATS JetStream until SIGTERM or SIGINT, then drains: stops pulling, finishes (or hands
back) the messages in hand, and exits 0. Several runners may serve the same nodes (replicas) or different ones.
  --graph ID        serve this graph instance (repeatable; default: all)
  --nodes a,b       serve only these nodes      --pool NAME   serve the nodes of this pool
  --concurrency N   tasks worked on at once, also the most messages held (default 256)
  --forward-batch N most tasks in one message to the next node: tasks finished in the same moment travel
                    together (default 256; 1 sends a message per task)
  --metrics-port P  Prometheus metrics on /metrics, health on /healthz and /readyz
  --ack-wait S      seconds before an unacknowledged message is redelivered (default 30; runners send heartbeats)
  --max-deliver N   deliveries before a message's task is failed (default 5)
  --drain-timeout S seconds to finish the messages in hand after SIGTERM before handing them back (default 30)
  --jobs DIR        more job classes (repeatable); <CONFIG>/jobs/ and the directories in $JOBCHAIN_JOBS
                    (':'-separated; /app/jobs in the project image) are always loaded
${NATS_USAGE}
${REPLICAS_USAGE}`;

export async function runner(argv: string[]): Promise<number> {
  const { values, positionals } = parse("runner", argv, {
    ...configFlags,
    ...natsFlags,
    ...busFlags,
    graph: { type: "string", short: "g", multiple: true },
    nodes: { type: "string" },
    pool: { type: "string" },
    concurrency: { type: "string", short: "c" },
    "forward-batch": { type: "string" },
    "metrics-port": { type: "string" },
    "drain-timeout": { type: "string" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  if (values.nodes !== undefined && values.pool !== undefined) throw new UsageError("runner: give --nodes or --pool, not both");
  const concurrency = positiveInt("concurrency", values.concurrency);
  const forwardBatch = positiveInt("forward-batch", values["forward-batch"]);
  const metricsPort = values["metrics-port"] === undefined ? undefined : Number(values["metrics-port"]);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort < 65536)) {
    throw new UsageError(`--metrics-port must be a port number, got '${values["metrics-port"]}'`);
  }
  const drain = values["drain-timeout"] === undefined ? 30 : Number(values["drain-timeout"]);
  if (!(drain >= 0)) throw new UsageError(`--drain-timeout must be a number of seconds, got '${values["drain-timeout"]}'`);
  const bus = busOptions(values);
  const reportKey = process.env.JOBCHAIN_RUNNER_REPORT;
  let loaded;
  try {
    loaded = await loadFromArgs(positionals[0], values.jobs);
  } catch (err) {
    // Started by the operator: say why this runner cannot serve, where the JobGraph's status picks it up.
    if (reportKey && err instanceof ConfigError) await reportProblems(values, reportKey, err.problems.map(formatProblem));
    throw err;
  }
  const { config, registry } = loaded;
  let instances = config.instances;
  if (values.graph?.length) {
    instances = [];
    for (const g of values.graph) {
      const chosen = instancesNamed(config.instances, g);
      if (chosen.length === 0) throw new UsageError(`unknown graph '${g}'`, `available: ${config.instances.map((i) => i.id).join(", ")}`);
      instances.push(...chosen);
    }
  }
  const nodes = values.nodes?.split(",").map((s) => s.trim()).filter(Boolean);
  if (nodes) {
    const known = new Set(instances.flatMap((i) => i.nodes.map((n) => n.name)));
    const unknown = nodes.filter((n) => !known.has(n));
    if (unknown.length) throw new UsageError(`--nodes names unknown node(s): ${unknown.join(", ")}`, `nodes: ${[...known].join(", ")}`);
  }
  if (values.pool !== undefined && !instances.some((i) => values.pool! in i.pools)) {
    throw new UsageError(`unknown pool '${values.pool}'`, `pools: ${[...new Set(instances.flatMap((i) => Object.keys(i.pools)))].join(", ")}`);
  }
  const tracing = await setupTracing();
  const nc = await connectFromFlags(values, `jobchain-runner-${process.pid}`, true);
  const r = await Runner.start({
    nc,
    graphs: instantiate({ ...config, instances }, registry),
    nodes,
    pool: values.pool,
    concurrency,
    forwardBatch,
    bus,
    tracer: tracing?.tracer,
    metricsPort,
  }).catch(async (err: unknown) => {
    // An open connection would keep the process alive after the error is reported.
    await nc.close().catch(() => undefined);
    throw err;
  });
  if (reportKey) await writeRunnerReport(nc, reportKey, { ok: true, served: r.served, host: hostname(), at: Date.now() }).catch(() => undefined);
  process.stderr.write(`jobchain runner: serving ${r.served.join(", ")}${r.metricsPort !== undefined ? `; metrics on :${r.metricsPort}/metrics` : ""}\n`);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      process.stderr.write(`jobchain runner: ${sig}: draining\n`);
      resolve();
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
  warnAbandoned(await r.stop(drain * 1000, ABANDON_GRACE_MS));
  // Draining flushes to the server; when the server is gone it would wait for a reconnection that may never come.
  const drained = nc.drain().then(
    () => true,
    () => false,
  );
  if (!(await Promise.race([drained, new Promise<false>((resolve) => setTimeout(resolve, 2000, false).unref())]))) {
    await nc.close().catch(() => undefined);
  }
  await tracing?.shutdown();
  process.stderr.write("jobchain runner: stopped\n");
  return EXIT.ok;
}

/** Best effort: a runner that cannot load its graph still tells the operator why, then exits. */
async function reportProblems(values: Parameters<typeof connectFromFlags>[0], key: string, problems: string[]): Promise<void> {
  try {
    const nc = await connectFromFlags(values, `jobchain-runner-${process.pid}`, false);
    await writeRunnerReport(nc, key, { ok: false, problems, host: hostname(), at: Date.now() });
    await nc.drain();
  } catch {
    // NATS unreachable as well: the exit status and the log still say why
  }
}
