// Everything an operator test needs, real: the local control plane (kube-apiserver + etcd), a nats-server, the
// CRDs from crds/, the Deployment stand-in (test/harness/deployments.ts: runner "pods" as local processes of
// bin/jobchain.js, built-in jobs plus the counting jobs below and the example pipeline's), and the operator, in this process or as a
// `jobchain operator` process (for kill -9).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { startNats, type NatsServerHandle } from "../harness/nats.ts";
import { startDeploymentRunner, type DeploymentRunner } from "../harness/deployments.ts";
import { installCrds } from "../harness/services.ts";
import { createKubeClient, loadKubeConfig, type KubeClient, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { startOperator, type Operator, type OperatorOptions } from "../../operator/index.ts";
import { createLogger } from "../../core/index.ts";
import { builtinRegistry } from "../../jobs/index.ts";
import { BIN, REPO } from "../helpers/cli.ts";
import { jobchain, type Proc } from "../helpers/procs.ts";
import { until } from "../helpers/until.ts";

/** A job that records each execution (task id and node) in $JOBCHAIN_COUNT_DIR, one file per process. */
export const COUNT_JOBS = `
import { appendFileSync } from "node:fs";
import { Job } from "jobchain";
export class Count extends Job {
  async run(task, ctx) {
    appendFileSync(process.env.JOBCHAIN_COUNT_DIR + "/" + process.pid + ".log", JSON.stringify({ id: ctx.taskId, node: ctx.job, graph: ctx.graph }) + "\\n");
    const ms = Number(this.properties.ms ?? task.ms ?? 0);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return { ...task, [ctx.job]: this.properties.tag ?? true };
  }
}
`;

export interface OperatorEnv {
  cp: ControlPlane;
  nats: NatsServerHandle;
  kube: KubeClient;
  pods: DeploymentRunner;
  countDir: string;
  jobsDir: string;
  /** Executions Count jobs completed: `<task id>|<node>` → count. */
  executions(): Map<string, number>;
  operator?: Operator;
  startOperator(extra?: Partial<OperatorOptions>): Promise<Operator>;
  /** A `jobchain operator` process. */
  operatorProcess(args?: string[], env?: NodeJS.ProcessEnv): Proc;
  stop(): Promise<void>;
}

export const quietLogger = () => createLogger({ level: process.env.JOBCHAIN_TEST_LOG ? "info" : "silent", name: "operator-test" });

export async function startOperatorEnv(options: { apiserverArgs?: string[] } = {}): Promise<OperatorEnv> {
  const cp = await startControlPlane({ apiserverArgs: options.apiserverArgs ?? [] });
  const nats = await startNats();
  const kube = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }), { qps: 500, burst: 1000 });
  await installCrds(kube);
  const countDir = mkdtempSync(path.join(os.tmpdir(), "jobchain-count-"));
  const jobsDir = mkdtempSync(path.join(os.tmpdir(), "jobchain-testjobs-"));
  writeFileSync(path.join(jobsDir, "count.js"), COUNT_JOBS);
  // What the stand-in's runner "image" holds: the built-in jobs, Count (above) and the example pipeline's
  // (examples/pipeline/jobs/text.ts; the CLI test of `jobchain jobs` lists the same).
  const stubTypes = new Set([...builtinRegistry().names(), "Count", "CleanText", "WordStats", "Tone", "Report"]);
  const pods = await startDeploymentRunner({
    kubeconfig: cp.adminKubeconfig,
    // The container's `jobchain runner ...` as a local process, with the test's jobs beside the built-in ones.
    // "Pods" share this host's ports here: each runner takes a free metrics port instead of the pod's own.
    commandMap: (argv) => [
      process.execPath,
      BIN,
      ...argv.slice(1).map((a, i, all) => (all[i - 1] === "--metrics-port" ? "0" : a)),
      ...(argv[1] === "runner" ? ["--jobs", jobsDir, "--jobs", path.join(REPO, "examples/pipeline/jobs")] : []),
    ],
    env: { ...process.env, JOBCHAIN_COUNT_DIR: countDir, JOBCHAIN_LOG_LEVEL: "warn" },
    maxGraceMs: 5000,
  });
  const env: OperatorEnv = {
    cp,
    nats,
    kube,
    pods,
    countDir,
    jobsDir,
    executions() {
      const counts = new Map<string, number>();
      for (const f of readdirSync(countDir).filter((n) => n.endsWith(".log"))) {
        for (const line of readFileSync(path.join(countDir, f), "utf8").split("\n")) {
          if (!line) continue;
          const e = JSON.parse(line) as { id: string; node: string };
          const k = `${e.id}|${e.node}`;
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      }
      return counts;
    },
    async startOperator(extra = {}) {
      const op = await startOperator({
        kubeconfig: cp.adminKubeconfig,
        nats: { url: nats.url },
        runnerImage: "jobchain:test",
        defaultImageJobTypes: stubTypes,
        logger: quietLogger(),
        metricsPort: 0,
        ...extra,
      });
      env.operator = op;
      return op;
    },
    operatorProcess(args = [], extraEnv = {}) {
      return jobchain(["operator", "--kubeconfig", cp.adminKubeconfig, "--nats", nats.url, "--runner-image", "jobchain:test", ...args], {
        JOBCHAIN_LOG_LEVEL: "warn",
        ...extraEnv,
      });
    },
    async stop() {
      await env.operator?.stop().catch(() => undefined);
      await pods.stop().catch(() => undefined);
      await nats.stop().catch(() => undefined);
      await cp.stop().catch(() => undefined);
      rmSync(countDir, { recursive: true, force: true });
      rmSync(jobsDir, { recursive: true, force: true });
    },
  };
  return env;
}

type Cond = { type: string; status: string; reason?: string; message?: string };

/** Polls a resource until `check` holds; returns it. Fails with the last state seen. */
export async function waitFor<T extends KubeObject>(
  kube: KubeClient,
  type: typeof JOBGRAPHS | typeof JOBTASKS,
  namespace: string,
  name: string,
  check: (o: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  let last: T | undefined;
  try {
    await until(async () => {
      last = await kube.get<T>(type, namespace, name);
      return !!last && check(last);
    }, timeoutMs, `${type.kind} ${namespace}/${name}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify((last as { status?: unknown } | undefined)?.status ?? last)}`);
  }
  return last!;
}

export function condition(o: KubeObject, type: string): Cond | undefined {
  return ((o as { status?: { conditions?: Cond[] } }).status?.conditions ?? []).find((c) => c.type === type);
}

export function jobGraph(name: string, spec: Record<string, unknown>, namespace = "default"): KubeObject {
  return { apiVersion: "jobchain.dev/v1alpha1", kind: "JobGraph", metadata: { name, namespace }, spec };
}

export function jobTask(name: string, spec: Record<string, unknown>, namespace = "default"): KubeObject {
  return { apiVersion: "jobchain.dev/v1alpha1", kind: "JobTask", metadata: { name, namespace }, spec };
}
