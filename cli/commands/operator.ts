import { parse, positiveInt } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { NATS_USAGE, natsFlags, natsOptions } from "./nats-flags.ts";
import { natsUrl } from "../../runner/index.ts";
import { builtinRegistry } from "../../jobs/index.ts";

export const DEFAULT_RUNNER_IMAGE = "jobchain:0.1.0";

export const usage = `usage: jobchain operator [--kubeconfig FILE] [--namespace NS]... [--nats URL] [--nats-secret NAME]
                         [--runner-image IMAGE] [--allowed-images PREFIX,...] [--leader-elect]
                         [--metrics-port N] [--qps N] [--burst N]

Runs the Kubernetes operator: reconciles JobGraph and JobTask resources (jobchain.dev/v1alpha1) until SIGTERM or
SIGINT. In a pod it uses the service account; outside one, --kubeconfig, $KUBECONFIG or ~/.kube/config.
  --namespace NS          watch only this namespace (repeatable; default: every namespace)
  --nats URL              NATS of graphs that name none in spec.nats (default $JOBCHAIN_NATS_URL)
  --nats-secret NAME      Secret (keys token, user, password) that runners of graphs naming no NATS take their
                          credentials from: one of this name in each graph's namespace
  --runner-image IMAGE    runner image of graphs without spec.image (default $JOBCHAIN_RUNNER_IMAGE or ${DEFAULT_RUNNER_IMAGE})
  --allowed-images P,...  refuse a JobGraph whose spec.image starts with none of these prefixes
  --leader-elect          only the holder of the Lease reconciles (run two or more replicas)
  --lease-name NAME       name of the Lease (default jobchain-operator); operators watching different namespaces
                          from one namespace need one each
  --lease-namespace NS    namespace of the Lease (default: the context's or the pod's namespace)
  --lease-duration S      seconds a leader's Lease lasts without renewal: the failover time (default 15)
  --metrics-port N        Prometheus /metrics, /healthz and /readyz on this port
  --qps N --burst N       client-side limit of API requests per second (default 200, burst 400)
  --workers N             JobTasks reconciled at once (default 16)
${NATS_USAGE}`;

export async function operator(argv: string[]): Promise<number> {
  const { values } = parse("operator", argv, {
    ...natsFlags,
    kubeconfig: { type: "string" },
    namespace: { type: "string", short: "n", multiple: true },
    "nats-secret": { type: "string" },
    "runner-image": { type: "string" },
    "allowed-images": { type: "string" },
    "leader-elect": { type: "boolean" },
    "lease-name": { type: "string" },
    "lease-namespace": { type: "string" },
    "lease-duration": { type: "string" },
    "metrics-port": { type: "string" },
    qps: { type: "string" },
    burst: { type: "string" },
    workers: { type: "string" },
  }, 0);
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  const metricsPort = values["metrics-port"] === undefined ? undefined : Number(values["metrics-port"]);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort < 65536)) {
    throw new UsageError(`--metrics-port must be a port number, got '${values["metrics-port"]}'`);
  }
  const leaseSeconds = values["lease-duration"] === undefined ? undefined : Number(values["lease-duration"]);
  if (leaseSeconds !== undefined && !(leaseSeconds >= 2)) throw new UsageError(`--lease-duration must be at least 2 seconds, got '${values["lease-duration"]}'`);
  const allowed = values["allowed-images"]?.split(",").map((s) => s.trim()).filter(Boolean);
  if (values["allowed-images"] !== undefined && !allowed?.length) throw new UsageError("--allowed-images needs at least one image prefix");
  // Flags over JOBCHAIN_NATS_* (connectNats adds the environment under what is given here).
  const nats = { ...natsOptions(values, "jobchain-operator"), url: natsUrl(values.nats) };
  const { startOperator } = await loadOperator();
  const runnerImage = values["runner-image"] ?? process.env.JOBCHAIN_RUNNER_IMAGE;
  const op = await startOperator({
    kubeconfig: values.kubeconfig,
    namespaces: values.namespace,
    nats,
    natsSecret: values["nats-secret"],
    runnerImage: runnerImage ?? DEFAULT_RUNNER_IMAGE,
    // The default image is the project image: it holds exactly the built-in jobs.
    defaultImageJobTypes: runnerImage === undefined ? new Set(builtinRegistry().names()) : undefined,
    allowedImages: allowed,
    leaderElect: values["leader-elect"] ?? false,
    leaseName: values["lease-name"],
    leaseNamespace: values["lease-namespace"],
    leaseDurationMs: leaseSeconds === undefined ? undefined : leaseSeconds * 1000,
    metricsPort,
    qps: positiveInt("qps", values.qps),
    burst: positiveInt("burst", values.burst),
    workers: positiveInt("workers", values.workers),
  }).catch((err: unknown) => {
    // No usable kubeconfig is a usage problem: say where one is looked for.
    if ((err as Error).name === "KubeConfigError") {
      throw new UsageError((err as Error).message, "pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account");
    }
    throw err;
  });
  process.stderr.write(
    `jobchain operator: started as ${op.identity}${values["leader-elect"] ? " (leader election on)" : ""}${op.metricsPort !== undefined ? `; metrics on :${op.metricsPort}/metrics` : ""}\n`,
  );
  const reason = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
    void op.done.then(() => resolve("lost the lease"));
  });
  process.stderr.write(`jobchain operator: ${reason}: stopping\n`);
  await op.stop();
  process.stderr.write("jobchain operator: stopped\n");
  // A former leader exits non-zero so that its pod restarts and rejoins the election.
  return reason === "lost the lease" ? EXIT.failed : EXIT.ok;
}

/** The operator module, loaded only by this command. */
function loadOperator(): Promise<typeof import("../../operator/index.ts")> {
  return import("../../operator/index.ts");
}
