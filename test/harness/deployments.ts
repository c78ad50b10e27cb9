// TEST TOOL ONLY — the product never imports this. A stand-in for the kubelet and the Deployment controller,
// for end-to-end tests against the local control plane (controlplane.ts), which has neither: it watches the
// Deployments that carry a label selector and keeps `spec.replicas` local processes running for each, as pods
// would, and writes the Deployment's `/status` the way the real controller does.
//
//   const runner = await startDeploymentRunner({
//     kubeconfig: cp.adminKubeconfig,
//     commandMap: { jobchain: [process.execPath, path.join(repo, "bin/jobchain.js")] },
//   });
//   await runner.waitFor((ps) => ps.filter((p) => p.ready).length === 2);
//   runner.processes()[0]!.kill();      // like a crashed pod: restarted (restartPolicy Always)
//   await runner.stop();                // every process is stopped
//
// What a "pod" is here: one local process per replica, started from the pod template's FIRST container: its
// `command` (mapped through `commandMap`, e.g. the container command `jobchain` → node + bin/jobchain.js) plus
// `args`, `workingDir`, and `env`/`envFrom` (literal values, `secretKeyRef`/`configMapKeyRef` read from the API at
// each container start, `fieldRef` for metadata.name/namespace/uid, spec.nodeName, status.podIP/hostIP). HOSTNAME
// is the pod name, as the kubelet sets it. The image, probes, resources, volumes and other containers are ignored.
// A process counts as ready while it runs (after `minReadySeconds` for available). A process that exits is
// restarted with a doubling back-off (restartDelayMs … 5 s, reset after 10 s of running). Scaling follows
// `spec.replicas` (the newest pods go first); a change of the pod template rolls the pods one at a time (surge 1:
// start a new one, then stop an old one), like the RollingUpdate strategy. Stopping a pod sends SIGTERM to its
// process group, then SIGKILL after the template's terminationGracePeriodSeconds (capped by `maxGraceMs`).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  Watch,
  type V1Container,
  type V1Deployment,
  type V1DeploymentCondition,
  type V1DeploymentStatus,
  type V1PodTemplateSpec,
} from "@kubernetes/client-node";

export const DEFAULT_RUNNER_SELECTOR = "app.kubernetes.io/component=runner";

export interface DeploymentRunnerOptions {
  /** Path of a kubeconfig, or a loaded KubeConfig (needs get/list/watch deployments, patch deployments/status, get secrets/configmaps). */
  kubeconfig: string | KubeConfig;
  /** Only Deployments in this namespace (default: all namespaces). */
  namespace?: string;
  /** Label selector on the Deployments to run (default DEFAULT_RUNNER_SELECTOR). */
  labelSelector?: string;
  /**
   * Maps the container's command to a local one. A record replaces a matching `command[0]`
   * (`{ jobchain: [process.execPath, "<repo>/bin/jobchain.js"] }`); a function gets the full argv
   * (command + args) and the container and returns the argv to run. Unmapped commands run as they are.
   */
  commandMap?: Record<string, string[]> | ((argv: string[], container: V1Container) => string[]);
  /** Base environment of every process (default: this process's environment). The container's env is added on top. */
  env?: Record<string, string | undefined>;
  /** Working directory when the container sets none (default: this process's). */
  cwd?: string;
  /** First restart delay after a process exits, ms (default 100), doubling up to 5 s. */
  restartDelayMs?: number;
  /** Upper bound of the SIGTERM→SIGKILL grace, ms (default 10000). */
  maxGraceMs?: number;
  /** Copy every process's output to this process's stderr, prefixed with the pod name (default: env JOBCHAIN_RUNNER_LOG=1). */
  log?: boolean;
  /** Called for notable events (pod started/exited/stopped, errors), for debugging. */
  onEvent?: (event: RunnerEvent) => void;
}

export interface RunnerEvent {
  type: "started" | "exited" | "stopping" | "error" | "status";
  namespace: string;
  deployment: string;
  pod?: string;
  message: string;
}

/** A snapshot of one "pod". */
export interface RunnerProcess {
  readonly namespace: string;
  readonly deployment: string;
  /** `<deployment>-<template hash>-<random>` */
  readonly podName: string;
  /** Pid of the current process (undefined between a crash and its restart). */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Running for at least the Deployment's minReadySeconds. */
  readonly ready: boolean;
  /** How many times the process was restarted after it exited. */
  readonly restarts: number;
  /** Hash of the pod template the pod was created from. */
  readonly templateHash: string;
  /** The argv that runs. */
  readonly argv: readonly string[];
  /** The last ~64 KiB of its stdout+stderr (all restarts). */
  output(): string;
  /** Sends a signal (default SIGKILL) to the process group, like a crash; the pod is restarted. */
  kill(signal?: NodeJS.Signals): void;
}

export interface DeploymentRunner {
  /** The current pods (all namespaces/deployments, or those of one Deployment). */
  processes(filter?: { namespace?: string; deployment?: string }): RunnerProcess[];
  /** Resolves when `predicate(processes)` holds (checked on every change and every 50 ms). */
  waitFor(predicate: (processes: RunnerProcess[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops watching and stops every process (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024;

// ---- pods ----------------------------------------------------------------------------------------------------

interface Pod {
  namespace: string;
  deployment: string;
  name: string;
  uid: string;
  hash: string;
  template: V1PodTemplateSpec;
  child: ChildProcess | undefined;
  argv: string[];
  startedAt: number;
  restarts: number;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  stopping: boolean;
  stopped: Promise<void> | undefined;
  output: string;
  exited: Promise<void>;
}

interface DeploymentEntry {
  namespace: string;
  name: string;
  obj: V1Deployment | undefined;
  pods: Pod[];
  running: boolean;
  dirty: boolean;
  recheckTimer: NodeJS.Timeout | undefined;
  recheckAt: number;
}

/** JSON with sorted keys, without null/undefined members, Dates as ISO strings: the same for typed and raw objects. */
function stableStringify(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== null && x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableStringify(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

function templateHash(d: V1Deployment): string {
  return createHash("sha256").update(stableStringify(d.spec?.template ?? {})).digest("hex").slice(0, 10);
}

function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join("");
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

// Every process this module started, killed when this process exits or is interrupted.
const allPods = new Set<Pod>();
let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const p of allPods) killGroup(p.child?.pid, "SIGKILL");
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killAll();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

// ---- the runner ----------------------------------------------------------------------------------------------

export async function startDeploymentRunner(opts: DeploymentRunnerOptions): Promise<DeploymentRunner> {
  const kc = typeof opts.kubeconfig === "string" ? loadKubeConfig(opts.kubeconfig) : opts.kubeconfig;
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = opts.labelSelector ?? DEFAULT_RUNNER_SELECTOR;
  const restartDelayMs = opts.restartDelayMs ?? 100;
  const maxGraceMs = opts.maxGraceMs ?? 10_000;
  const echo = opts.log ?? process.env.JOBCHAIN_RUNNER_LOG === "1";
  const entries = new Map<string, DeploymentEntry>();
  const waiters = new Set<() => void>();
  let stopped = false;
  let watchAbort: AbortController | undefined;
  let relistTimer: NodeJS.Timeout | undefined;
  installHooks();

  const emit = (e: RunnerEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      /* the callback's problem */
    }
  };
  const changed = () => {
    for (const w of waiters) w();
  };

  const entryFor = (namespace: string, name: string): DeploymentEntry => {
    const key = `${namespace}/${name}`;
    let e = entries.get(key);
    if (!e) {
      e = { namespace, name, obj: undefined, pods: [], running: false, dirty: false, recheckTimer: undefined, recheckAt: 0 };
      entries.set(key, e);
    }
    return e;
  };

  // --- container start ---

  async function resolveEnv(pod: Pod, container: V1Container): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? process.env)) if (v !== undefined) env[k] = v;
    env.HOSTNAME = pod.name;
    const secrets = new Map<string, Record<string, string> | undefined>();
    const configMaps = new Map<string, Record<string, string> | undefined>();
    const secret = async (name: string) => {
      if (!secrets.has(name)) {
        try {
          const s = await core.readNamespacedSecret({ name, namespace: pod.namespace });
          const data: Record<string, string> = {};
          for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, "base64").toString("utf8");
          for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
          secrets.set(name, data);
        } catch {
          secrets.set(name, undefined);
        }
      }
      return secrets.get(name);
    };
    const configMap = async (name: string) => {
      if (!configMaps.has(name)) {
        try {
          const c = await core.readNamespacedConfigMap({ name, namespace: pod.namespace });
          configMaps.set(name, { ...(c.data ?? {}) });
        } catch {
          configMaps.set(name, undefined);
        }
      }
      return configMaps.get(name);
    };
    for (const from of container.envFrom ?? []) {
      const prefix = from.prefix ?? "";
      const data = from.secretRef
        ? await secret(from.secretRef.name ?? "")
        : from.configMapRef
          ? await configMap(from.configMapRef.name ?? "")
          : {};
      const optional = from.secretRef?.optional ?? from.configMapRef?.optional ?? false;
      if (!data && !optional) throw new Error(`envFrom ${from.secretRef ? "secret" : "configmap"} not found`);
      for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
    }
    for (const e of container.env ?? []) {
      if (e.valueFrom === undefined) {
        env[e.name] = expandVars(e.value ?? "", env);
        continue;
      }
      const { secretKeyRef, configMapKeyRef, fieldRef } = e.valueFrom;
      if (secretKeyRef) {
        const v = (await secret(secretKeyRef.name ?? ""))?.[secretKeyRef.key];
        if (v === undefined && !secretKeyRef.optional) {
          throw new Error(`env ${e.name}: key ${secretKeyRef.key} of secret ${secretKeyRef.name} not found`);
        }
        if (v !== undefined) env[e.name] = v;
      } else if (configMapKeyRef) {
        const v = (await configMap(configMapKeyRef.name ?? ""))?.[configMapKeyRef.key];
        if (v === undefined && !configMapKeyRef.optional) {
          throw new Error(`env ${e.name}: key ${configMapKeyRef.key} of configmap ${configMapKeyRef.name} not found`);
        }
        if (v !== undefined) env[e.name] = v;
      } else if (fieldRef) {
        const fields: Record<string, string> = {
          "metadata.name": pod.name,
          "metadata.namespace": pod.namespace,
          "metadata.uid": pod.uid,
          "spec.nodeName": "localhost",
          "spec.serviceAccountName": pod.template.spec?.serviceAccountName ?? "default",
          "status.podIP": "127.0.0.1",
          "status.hostIP": "127.0.0.1",
        };
        const v = fields[fieldRef.fieldPath];
        if (v === undefined) throw new Error(`env ${e.name}: fieldRef ${fieldRef.fieldPath} is not supported here`);
        env[e.name] = v;
      } else {
        throw new Error(`env ${e.name}: only value, secretKeyRef, configMapKeyRef and fieldRef are supported here`);
      }
    }
    return env;
  }

  function mapArgv(container: V1Container): string[] {
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    const map = opts.commandMap;
    if (typeof map === "function") return map(argv, container);
    const head = container.command?.[0];
    if (map && head !== undefined && Object.hasOwn(map, head)) return [...(map[head] ?? []), ...argv.slice(1)];
    return argv;
  }

  async function startContainer(pod: Pod, e: DeploymentEntry): Promise<void> {
    if (pod.stopping || stopped) return;
    const container = pod.template.spec?.containers?.[0];
    try {
      if (!container) throw new Error("the pod template has no container");
      const env = await resolveEnv(pod, container);
      const argv = mapArgv(container);
      if (argv.length === 0 || !argv[0]) throw new Error(`container ${container.name} has no command (use commandMap)`);
      if (pod.stopping || stopped) return;
      pod.argv = argv;
      const child = spawn(argv[0], argv.slice(1), {
        cwd: container.workingDir || opts.cwd || process.cwd(),
        env,
        detached: true, // own process group: a "pod" is killed as a whole
        stdio: ["ignore", "pipe", "pipe"],
      });
      pod.child = child;
      pod.startedAt = Date.now();
      const onData = (chunk: Buffer) => {
        const s = chunk.toString("utf8");
        pod.output = (pod.output + s).slice(-OUTPUT_LIMIT);
        if (echo) for (const line of s.split("\n")) if (line) process.stderr.write(`[${pod.name}] ${line}\n`);
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      pod.exited = new Promise<void>((resolve) => {
        let done = false;
        const finish = (why: string) => {
          if (done) return;
          done = true;
          if (pod.child === child) pod.child = undefined;
          emit({ type: "exited", namespace: pod.namespace, deployment: pod.deployment, pod: pod.name, message: why });
          resolve();
          changed();
          if (!pod.stopping && !stopped) {
            // restartPolicy: Always, with a back-off that resets after a good run.
            if (Date.now() - pod.startedAt > 10_000) pod.backoffMs = restartDelayMs;
            const delay = pod.backoffMs;
            pod.backoffMs = Math.min(pod.backoffMs * 2, 5_000);
            pod.restartTimer = setTimeout(() => {
              pod.restartTimer = undefined;
              if (pod.stopping || stopped) return;
              pod.restarts++;
              void startContainer(pod, e).then(() => schedule(e));
            }, delay);
          }
          schedule(e);
        };
        child.once("exit", (code, signal) => finish(`exit code ${code}${signal ? `, signal ${signal}` : ""}`));
        child.once("error", (err) => finish(`spawn failed: ${err.message}`));
      });
      emit({
        type: "started",
        namespace: pod.namespace,
        deployment: pod.deployment,
        pod: pod.name,
        message: `pid ${child.pid}: ${argv.join(" ")}`,
      });
      changed();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      pod.output = (pod.output + `[deployment runner] cannot start: ${message}\n`).slice(-OUTPUT_LIMIT);
      emit({ type: "error", namespace: pod.namespace, deployment: pod.deployment, pod: pod.name, message });
      // Like CreateContainerConfigError: retried with the back-off.
      if (!pod.stopping && !stopped) {
        const delay = pod.backoffMs;
        pod.backoffMs = Math.min(pod.backoffMs * 2, 5_000);
        pod.restartTimer = setTimeout(() => {
          pod.restartTimer = undefined;
          void startContainer(pod, e).then(() => schedule(e));
        }, delay);
      }
    }
  }

  function newPod(e: DeploymentEntry, d: V1Deployment, hash: string): Pod {
    const pod: Pod = {
      namespace: e.namespace,
      deployment: e.name,
      name: `${e.name}-${hash}-${randomSuffix()}`,
      uid: crypto.randomUUID(),
      hash,
      template: structuredClone(d.spec?.template) ?? { spec: { containers: [] } },
      child: undefined,
      argv: [],
      startedAt: 0,
      restarts: 0,
      backoffMs: restartDelayMs,
      restartTimer: undefined,
      stopping: false,
      stopped: undefined,
      output: "",
      exited: Promise.resolve(),
    };
    allPods.add(pod);
    e.pods.push(pod);
    return pod;
  }

  function stopPod(e: DeploymentEntry, pod: Pod, graceMs?: number): Promise<void> {
    if (pod.stopped) return pod.stopped;
    pod.stopping = true;
    if (pod.restartTimer) clearTimeout(pod.restartTimer);
    emit({ type: "stopping", namespace: pod.namespace, deployment: pod.deployment, pod: pod.name, message: "" });
    const grace = Math.min(graceMs ?? (pod.template.spec?.terminationGracePeriodSeconds ?? 30) * 1000, maxGraceMs);
    pod.stopped = (async () => {
      const child = pod.child;
      if (child?.pid && child.exitCode === null && child.signalCode === null) {
        killGroup(child.pid, "SIGTERM");
        const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), grace);
        await pod.exited;
        clearTimeout(timer);
      }
      allPods.delete(pod);
      e.pods = e.pods.filter((p) => p !== pod);
      changed();
    })();
    return pod.stopped;
  }

  const isRunning = (p: Pod) => p.child !== undefined && p.child.exitCode === null && p.child.signalCode === null;
  const isReady = (p: Pod, minReadyMs: number) => isRunning(p) && Date.now() - p.startedAt >= minReadyMs;

  // --- reconcile (serialized per Deployment) ---

  function schedule(e: DeploymentEntry): void {
    if (stopped) return;
    e.dirty = true;
    if (e.running) return;
    e.running = true;
    void (async () => {
      try {
        while (e.dirty && !stopped) {
          e.dirty = false;
          try {
            await reconcile(e);
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            emit({ type: "error", namespace: e.namespace, deployment: e.name, message });
            recheck(e, 500);
          }
        }
      } finally {
        e.running = false;
      }
    })();
  }

  /** One pending re-check per Deployment (the earliest wins). */
  function recheck(e: DeploymentEntry, delayMs: number): void {
    const at = Date.now() + delayMs;
    if (e.recheckTimer && e.recheckAt <= at) return;
    if (e.recheckTimer) clearTimeout(e.recheckTimer);
    e.recheckAt = at;
    e.recheckTimer = setTimeout(() => {
      e.recheckTimer = undefined;
      schedule(e);
    }, delayMs);
    e.recheckTimer.unref();
  }

  async function reconcile(e: DeploymentEntry): Promise<void> {
    const d = e.obj;
    if (!d) {
      if (e.recheckTimer) clearTimeout(e.recheckTimer);
      await Promise.all(e.pods.map((p) => stopPod(e, p)));
      entries.delete(`${e.namespace}/${e.name}`);
      return;
    }
    const desired = d.spec?.replicas ?? 1;
    const hash = templateHash(d);
    const minReadyMs = (d.spec?.minReadySeconds ?? 0) * 1000;
    const live = e.pods.filter((p) => !p.stopping);
    const current = live.filter((p) => p.hash === hash);
    const old = live.filter((p) => p.hash !== hash);

    if (old.length === 0) {
      // Scale: start the missing pods; stop surplus ones, those not running first, then the newest.
      for (let i = current.length; i < desired; i++) void startContainer(newPod(e, d, hash), e).then(() => schedule(e));
      if (current.length > desired) {
        const rank = (p: Pod) => (isRunning(p) ? p.startedAt : Number.MAX_SAFE_INTEGER);
        const victims = [...current].sort((a, b) => rank(b) - rank(a)).slice(0, current.length - desired);
        for (const p of victims) void stopPod(e, p).then(() => schedule(e));
      }
    } else {
      // Rolling update, surge 1 / max unavailable 0: one new pod, once it is ready one old pod goes.
      const currentReady = current.filter((p) => isReady(p, minReadyMs)).length;
      const total = live.length;
      if (current.length < desired && total < desired + 1) {
        void startContainer(newPod(e, d, hash), e).then(() => schedule(e));
      } else if (currentReady >= Math.min(current.length, desired) || desired === 0) {
        const victim = old.sort((a, b) => b.startedAt - a.startedAt)[0];
        if (victim) void stopPod(e, victim).then(() => schedule(e));
      }
      if (current.length > desired) {
        for (const p of current.slice(desired)) void stopPod(e, p).then(() => schedule(e));
      }
      recheck(e, 100); // the rollout goes on as new pods become ready
    }
    // Readiness is time-based with minReadySeconds: look again when the next running pod becomes available.
    const pending = e.pods
      .filter((p) => isRunning(p) && !isReady(p, minReadyMs))
      .map((p) => p.startedAt + minReadyMs - Date.now());
    if (pending.length > 0) recheck(e, Math.max(Math.min(...pending), 0) + 10);
    await writeStatus(e, d, hash, desired, minReadyMs);
  }

  async function writeStatus(e: DeploymentEntry, d: V1Deployment, hash: string, desired: number, minReadyMs: number) {
    const pods = e.pods.filter((p) => !p.stopping);
    const updated = pods.filter((p) => p.hash === hash).length;
    const ready = pods.filter((p) => isRunning(p)).length;
    const available = pods.filter((p) => isReady(p, minReadyMs)).length;
    const complete = updated === desired && pods.length === desired && available === desired;
    const old = d.status?.conditions ?? [];
    const condition = (type: string, status: string, reason: string, message: string): V1DeploymentCondition => {
      const prev = old.find((c) => c.type === type);
      const now = new Date();
      const same = prev?.status === status;
      return {
        type,
        status,
        reason,
        message,
        lastUpdateTime: same && prev?.reason === reason ? (prev.lastUpdateTime ?? now) : now,
        lastTransitionTime: same ? (prev?.lastTransitionTime ?? now) : now,
      };
    };
    const status: V1DeploymentStatus = {
      observedGeneration: d.metadata?.generation ?? 0,
      replicas: pods.length,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: available,
      unavailableReplicas: Math.max(desired - available, 0),
      conditions: [
        available >= desired
          ? condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
          : condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
        complete
          ? condition("Progressing", "True", "NewReplicaSetAvailable", `ReplicaSet "${d.metadata?.name}-${hash}" has successfully progressed.`)
          : condition("Progressing", "True", "ReplicaSetUpdated", `ReplicaSet "${d.metadata?.name}-${hash}" is progressing.`),
      ],
    };
    // Compare with what the server has (numbers and condition statuses/reasons only, not timestamps).
    const key = (s: V1DeploymentStatus | undefined) =>
      stableStringify({
        o: s?.observedGeneration ?? 0,
        r: s?.replicas ?? 0,
        u: s?.updatedReplicas ?? 0,
        rr: s?.readyReplicas ?? 0,
        a: s?.availableReplicas ?? 0,
        un: s?.unavailableReplicas ?? 0,
        c: (s?.conditions ?? []).map((c) => [c.type, c.status, c.reason]),
      });
    const want = key(status);
    if (want === key(d.status)) return;
    try {
      const res = await apps.patchNamespacedDeploymentStatus({
        name: e.name,
        namespace: e.namespace,
        body: [{ op: "replace", path: "/status", value: serializeStatus(status) }],
      });
      // The response may arrive after a watch event of a later change (a scale): keep the newer object.
      if (e.obj && rv(res) > rv(e.obj)) e.obj = res;
      emit({ type: "status", namespace: e.namespace, deployment: e.name, message: want });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) return; // deleted meanwhile; the watch will tell
      throw err;
    }
  }

  // --- list + watch ---

  const path = opts.namespace ? `/apis/apps/v1/namespaces/${opts.namespace}/deployments` : "/apis/apps/v1/deployments";

  async function listAndWatch(): Promise<void> {
    if (stopped) return;
    const list = opts.namespace
      ? await apps.listNamespacedDeployment({ namespace: opts.namespace, labelSelector })
      : await apps.listDeploymentForAllNamespaces({ labelSelector });
    const seen = new Set<string>();
    for (const d of list.items) {
      const e = entryFor(d.metadata?.namespace ?? "default", d.metadata?.name ?? "");
      seen.add(`${e.namespace}/${e.name}`);
      e.obj = d;
      schedule(e);
    }
    for (const [key, e] of entries) {
      if (!seen.has(key)) {
        e.obj = undefined;
        schedule(e);
      }
    }
    const watch = new Watch(kc);
    watchAbort = await watch.watch(
      path,
      { labelSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
      (type, obj: V1Deployment) => {
        if (type === "BOOKMARK") return;
        if (type === "ERROR") {
          watchAbort?.abort(); // e.g. 410 Gone: relist
          return;
        }
        const e = entryFor(obj.metadata?.namespace ?? "default", obj.metadata?.name ?? "");
        if (type === "DELETED") e.obj = undefined;
        else if (!e.obj || rv(obj) >= rv(e.obj)) e.obj = obj; // not older than what our own status write returned
        schedule(e);
      },
      () => {
        if (stopped) return;
        relistTimer = setTimeout(() => void listAndWatch().catch(retry), 200);
      },
    );
  }
  const retry = (err: unknown) => {
    emit({ type: "error", namespace: opts.namespace ?? "", deployment: "", message: `list/watch: ${String(err)}` });
    if (!stopped) relistTimer = setTimeout(() => void listAndWatch().catch(retry), 1000);
  };
  await listAndWatch();

  const snapshot = (p: Pod): RunnerProcess => {
    const d = entries.get(`${p.namespace}/${p.deployment}`)?.obj;
    const minReadyMs = (d?.spec?.minReadySeconds ?? 0) * 1000;
    return {
      namespace: p.namespace,
      deployment: p.deployment,
      podName: p.name,
      pid: isRunning(p) ? p.child?.pid : undefined,
      running: isRunning(p),
      ready: isReady(p, minReadyMs),
      restarts: p.restarts,
      templateHash: p.hash,
      argv: [...p.argv],
      output: () => p.output,
      kill: (signal = "SIGKILL") => killGroup(p.child?.pid, signal),
    };
  };

  const processes = (filter?: { namespace?: string; deployment?: string }) =>
    [...entries.values()]
      .flatMap((e) => e.pods)
      .filter((p) => !p.stopping)
      .filter((p) => !filter?.namespace || p.namespace === filter.namespace)
      .filter((p) => !filter?.deployment || p.deployment === filter.deployment)
      .map(snapshot);

  let stopPromise: Promise<void> | undefined;
  const runner: DeploymentRunner = {
    processes,
    waitFor: (predicate, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          let ok = false;
          try {
            ok = predicate(processes());
          } catch (err) {
            cleanup();
            reject(err);
            return;
          }
          if (ok) {
            cleanup();
            resolve();
          }
        };
        const interval = setInterval(check, 50);
        const timer = setTimeout(() => {
          cleanup();
          const state = processes().map((p) => `${p.podName} running=${p.running} restarts=${p.restarts}`);
          reject(new Error(`waitFor: timed out after ${timeoutMs} ms; processes: ${state.join("; ") || "none"}`));
        }, timeoutMs);
        const cleanup = () => {
          clearInterval(interval);
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stop: () =>
      (stopPromise ??= (async () => {
        stopped = true;
        if (relistTimer) clearTimeout(relistTimer);
        watchAbort?.abort();
        for (const e of entries.values()) if (e.recheckTimer) clearTimeout(e.recheckTimer);
        await Promise.all([...entries.values()].flatMap((e) => e.pods.map((p) => stopPod(e, p))));
        entries.clear();
      })()),
    [Symbol.asyncDispose]: () => runner.stop(),
  };
  return runner;
}

/** resourceVersion as a number (etcd revisions; fine for this test tool, opaque for real clients). */
function rv(d: V1Deployment): number {
  return Number(d.metadata?.resourceVersion ?? 0) || 0;
}

function loadKubeConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** `$(VAR)` references to earlier variables, as the kubelet expands them (`$$(VAR)` escapes). */
function expandVars(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    m === "$$" ? "$" : name !== undefined && env[name] !== undefined ? env[name] : m,
  );
}

/** The status as plain JSON (Dates as RFC 3339 without fractions, as the API server writes them). */
function serializeStatus(s: V1DeploymentStatus): unknown {
  const time = (d: Date | undefined) => (d ? new Date(d).toISOString().replace(/\.\d{3}Z$/, "Z") : undefined);
  return {
    ...s,
    conditions: s.conditions?.map((c) => ({
      ...c,
      lastUpdateTime: time(c.lastUpdateTime),
      lastTransitionTime: time(c.lastTransitionTime),
    })),
  };
}
