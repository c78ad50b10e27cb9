// JobChain on a local cluster, for `make cluster-up`: a nats-server with JetStream, the CRDs, the operator
// (`jobchain operator`), and — where there is no real node — the Deployment stand-in that runs runner pods as
// local processes. Each runs detached in its own process group and is stopped by stopServices().
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { alive } from "./controlplane.ts";
import { findNatsServer, freePort } from "./nats.ts";
import { APIEXTENSIONS, createKubeClient, loadKubeConfig, type KubeClient, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ServicesState {
  dir: string;
  natsUrl: string;
  /** Process group ids. */
  pids: { nats: number; operator: number; standin?: number };
  operatorMetricsPort: number;
}

function detached(name: string, dir: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
  const log = openSync(path.join(dir, `${name}.log`), "a");
  const child = spawn(command, args, { cwd: repo, detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...env } });
  closeSync(log);
  child.unref();
  return child.pid!;
}

async function waitForPort(host: string, port: number, what: string, logFile: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} did not start; its log (${logFile}):\n${readFileSync(logFile, "utf8").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Applies crds/ and waits until both kinds are established and served. */
export async function installCrds(kube: KubeClient): Promise<void> {
  for (const file of readdirSync(path.join(repo, "crds"))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(repo, "crds", file), "utf8"))) {
      const crd = doc.toJSON() as KubeObject | null;
      if (crd) await kube.apply(APIEXTENSIONS.customResourceDefinitions, crd, { fieldManager: "jobchain-harness", force: true });
    }
  }
  const end = Date.now() + 30_000;
  for (;;) {
    let ready = true;
    for (const t of [JOBGRAPHS, JOBTASKS]) {
      const crd = await kube.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
        APIEXTENSIONS.customResourceDefinitions,
        undefined,
        `${t.plural}.${t.group}`,
      );
      // Established, and served: a list answers (429 "storage is (re)initializing" just after).
      ready &&=
        !!crd?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") &&
        (await kube.list(t, { namespace: "default" }).then(() => true, () => false));
    }
    if (ready) return;
    if (Date.now() > end) throw new Error("the JobGraph and JobTask CRDs were not established within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts NATS, installs the CRDs, starts the operator and (with `standIn`) the Deployment stand-in. `natsHost` is
 * where the server listens and what runners are told (the node IP where pods are real).
 */
export async function startServices(options: { dir: string; kubeconfig: string; natsHost?: string; standIn: boolean; runnerImage?: string }): Promise<ServicesState> {
  const dir = options.dir;
  mkdirSync(path.join(dir, "nats"), { recursive: true });
  const host = options.natsHost ?? "127.0.0.1";
  const port = await freePort();
  const nats = detached("nats-server", dir, findNatsServer(), ["-js", "-sd", path.join(dir, "nats"), "-a", host, "-p", String(port), "-n", "jobchain-local"]);
  await waitForPort(host, port, "nats-server", path.join(dir, "nats-server.log"));
  const natsUrl = `nats://${host}:${port}`;
  await installCrds(createKubeClient(loadKubeConfig({ kubeconfig: options.kubeconfig })));
  const metricsPort = await freePort();
  const operator = detached("operator", dir, process.execPath, [
    path.join(repo, "bin/jobchain.js"),
    "operator",
    "--kubeconfig",
    options.kubeconfig,
    "--nats",
    natsUrl,
    "--runner-image",
    options.runnerImage ?? "jobchain:0.1.0",
    "--metrics-port",
    String(metricsPort),
  ]);
  await waitForPort("127.0.0.1", metricsPort, "the operator", path.join(dir, "operator.log"), 60_000);
  const standin = options.standIn ? detached("standin", dir, process.execPath, [path.join(repo, "test/harness/standin.ts"), options.kubeconfig]) : undefined;
  const state: ServicesState = { dir, natsUrl, pids: { nats, operator, ...(standin ? { standin } : {}) }, operatorMetricsPort: metricsPort };
  writeFileSync(path.join(dir, "services.json"), `${JSON.stringify(state, null, 2)}\n`);
  return state;
}

export function readServices(dir: string): ServicesState | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, "services.json"), "utf8")) as ServicesState;
  } catch {
    return undefined;
  }
}


/** SIGTERM to each process group (the stand-in stops its pods, the operator drains), SIGKILL after a grace. */
export async function stopServices(state: ServicesState, graceMs = 10_000): Promise<void> {
  const groups = [state.pids.standin, state.pids.operator, state.pids.nats].filter((p): p is number => p !== undefined);
  for (const pid of groups) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      // already gone
    }
    const end = Date.now() + graceMs;
    while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  rmSync(path.join(state.dir, "services.json"), { force: true });
}
