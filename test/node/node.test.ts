// Contract tests on a real single-node Kubernetes (test/harness/node.ts): the project image runs `jobchain runner`
// in restricted pods and serves the example pipeline over NATS — a nats-server pod reached by Service name, and a
// nats-server on the host reached through the node IP — plus what the operator will rely on: logs and exec, pod
// replacement, service-account tokens under RBAC, PodSecurity, volumes that bind and keep data, garbage collection.
// The last test stops the node and checks that the host is exactly as before.
//
// One node per machine: this file starts it once for all its tests. Skipped — with the reason on stderr and as a
// skip note — where containers cannot run here, or the components or images are not built (`make node-prereqs`).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../harness/nats.ts";
import { CGROUP_ROOT, restrictedSecurityContextYaml } from "../harness/node-config.ts";
import { hostSnapshot, type HostSnapshot } from "../harness/node-host.ts";
import { IMAGES, NODE_NETWORK, cleanStaleNode, startNode, type KubeNode } from "../harness/node.ts";
import { eventually, kubectl, nodeSuiteSkip } from "../harness/node-vitest.ts";
import { installCrds } from "../harness/services.ts";
import { createKubeClient, loadKubeConfig } from "../../operator/kube/index.ts";

const skip = nodeSuiteSkip("real node contract", ["nats-server", "jobchain"]);

const NS = "jc-node";
const REPO = path.resolve(import.meta.dirname, "../..");
const PIPELINE = "/app/examples/pipeline";

/** The `restricted` Pod Security profile, as our pods declare it. */
const RESTRICTED = restrictedSecurityContextYaml(8);

function runnerDeployment(name: string, natsUrl: string, replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${NS}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      serviceAccountName: runner
      terminationGracePeriodSeconds: 5
      containers:
      - name: runner
        image: ${IMAGES.project}
        imagePullPolicy: IfNotPresent
        args: [runner, ${PIPELINE}, --graph, text_report/brief, --nats, "${natsUrl}", --drain-timeout, "2"]
        env: [{name: JOBCHAIN_LOG_LEVEL, value: info}]
        ${RESTRICTED}
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
`;
}

const natsManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: nats, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: nats}}
  template:
    metadata: {labels: {app: nats}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: nats
        image: ${IMAGES.nats}
        imagePullPolicy: IfNotPresent
        args: [-js, -sd, /data, -p, "4222"]
        ports: [{containerPort: 4222}]
        ${RESTRICTED}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: nats, namespace: ${NS}}
spec:
  selector: {app: nats}
  ports: [{port: 4222, targetPort: 4222}]
`;

const rbac = `apiVersion: v1
kind: ServiceAccount
metadata: {name: runner, namespace: ${NS}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: ${NS}}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runner-reads-pods, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: runner, namespace: ${NS}}]
`;

/** The id, status and result of each task in `jobchain run|submit` output, by id. */
function outcomes(jsonl: string): { id: string; status: string; result: unknown }[] {
  return jsonl
    .trim()
    .split("\n")
    .map((l) => {
      const r = JSON.parse(l) as { id: string; status: string; result: unknown };
      return { id: r.id, status: r.status, result: r.result };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

interface PodList {
  items: { metadata: { name: string; deletionTimestamp?: string; ownerReferences?: { kind: string }[] }; status: { phase?: string; conditions?: { type: string; status: string }[] } }[];
}

describe.skipIf(skip)("real node contract", () => {
  let node: KubeNode;
  let before: HostSnapshot;
  let hostNats: ChildProcess | undefined;
  let hostNatsDir: string | undefined;
  let hostNatsUrl = "";
  /** What the embedded engine computes for the example tasks: the node must give the same. */
  let embedded: ReturnType<typeof outcomes>;
  const k = (args: string[], input?: string) => kubectl(node, args, input);
  const pods = (selector: string): PodList => JSON.parse(k(["get", "pods", "-n", NS, "-l", selector, "-o", "json"])) as PodList;
  const readyPods = (selector: string) =>
    pods(selector).items.filter(
      (p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
  /** Why pods are not ready, for a failure message: the pods and the namespace's recent events. */
  const diagnosis = () => {
    try {
      return `\n${k(["get", "pods", "-n", NS, "-o", "wide"])}\n${k(["get", "events", "-n", NS, "--sort-by=.lastTimestamp"]).slice(-4000)}`;
    } catch (e) {
      return `\n(no diagnosis: ${e instanceof Error ? e.message : String(e)})`;
    }
  };
  const available = async (name: string, replicas: number) => {
    try {
      await eventually(`deployment ${name} available`, () => {
        const d = JSON.parse(k(["get", "deployment", name, "-n", NS, "-o", "json"])) as { status: { availableReplicas?: number } };
        return (d.status.availableReplicas ?? 0) >= replicas && readyPods(`app=${name}`).length === replicas;
      }, 180_000);
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}${diagnosis()}`, { cause: e });
    }
  };

  beforeAll(async () => {
    cleanStaleNode((l) => console.warn(l)); // a node left by a killed run: its changes are not "the host before"
    before = hostSnapshot(CGROUP_ROOT);
    embedded = outcomes(
      execFileSync(process.execPath, [path.join(REPO, "bin/jobchain.js"), "run", path.join(REPO, "examples/pipeline"), "--graph",
        "text_report/brief", "--inputs", path.join(REPO, "examples/pipeline/tasks.jsonl")], { encoding: "utf8" }),
    );
    expect(embedded.length).toBe(4);
    expect(embedded.every((r) => r.status === "succeeded")).toBe(true);
    node = await startNode({ images: ["pause", "nats-server", "jobchain", "base"] });
    k(["create", "namespace", NS]);
    k(["label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest"]);
    k(["apply", "-f", "-"], rbac);
    await eventually("service account runner", () => k(["get", "serviceaccount", "runner", "-n", NS, "-o", "name"]).trim());
  }, 420_000);

  afterAll(async () => {
    hostNats?.kill("SIGKILL");
    if (hostNatsDir) rmSync(hostNatsDir, { recursive: true, force: true });
    await node?.stop(); // idempotent: the hygiene test has normally stopped it already
  }, 180_000);

  it("runs jobchain runner in restricted pods and serves the pipeline over a nats-server reached by Service name", async () => {
    k(["apply", "-f", "-"], natsManifests);
    await available("nats", 1);
    k(["apply", "-f", "-"], runnerDeployment("runner", `nats://nats.${NS}.svc.cluster.local:4222`, 2));
    await available("runner", 2);
    // Submitted from inside a runner pod (kubectl exec), by Service name: name resolution, Service routing, exec.
    const out = k(["exec", "-n", NS, "deploy/runner", "--", "jobchain", "submit", PIPELINE, "--graph", "text_report/brief",
      "--inputs", `${PIPELINE}/tasks.jsonl`, "--nats", "nats://nats:4222", "--timeout", "60"]);
    expect(outcomes(out)).toEqual(embedded);
    // The container's logs come back through the kubelet: the runner's start line names what it serves.
    const logs = k(["logs", "-n", NS, readyPods("app=runner")[0]!.metadata.name]);
    expect(logs).toMatch(/runner consuming/);
    expect(logs).toContain("text_report/brief");
  }, 400_000);

  it("forwards a local port to a pod (kubectl port-forward)", async () => {
    const pf = spawn(node.kubectl, ["port-forward", "-n", NS, "deploy/nats", ":4222", "--address", "127.0.0.1"], {
      env: { ...process.env, ...node.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      pf.stdout.on("data", (d: Buffer) => (out += d));
      const port = await eventually("port-forward listening", () => Number(/127\.0\.0\.1:(\d+) ->/.exec(out)?.[1] ?? 0) || undefined, 60_000);
      // nats-server greets every client with an INFO line.
      const greeting = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ host: "127.0.0.1", port }, () => {});
        c.once("data", (d) => (c.destroy(), resolve(d.toString())));
        c.on("error", reject);
      });
      expect(greeting).toMatch(/^INFO \{.*"jetstream":true/);
    } finally {
      pf.kill();
    }
  }, 120_000);

  it("serves the pipeline over a nats-server on the host, reached through the node IP", async () => {
    const [port] = await new Promise<number[]>((resolve, reject) => {
      const s = net.createServer().listen(0, NODE_NETWORK.nodeIP, () => {
        const a = s.address();
        s.close(() => resolve([typeof a === "object" && a ? a.port : 0]));
      });
      s.on("error", reject);
    });
    hostNatsDir = mkdtempSync(path.join(os.tmpdir(), "jobchain-node-nats-"));
    hostNats = spawn(findNatsServer(), ["-a", NODE_NETWORK.nodeIP, "-p", String(port), "-js", "-sd", hostNatsDir], { stdio: "ignore" });
    hostNatsUrl = `nats://${NODE_NETWORK.nodeIP}:${port}`;
    await eventually("host nats-server", () =>
      new Promise<boolean>((resolve) => {
        const c = net.connect({ host: NODE_NETWORK.nodeIP, port: port! }, () => (c.end(), resolve(true)));
        c.on("error", () => resolve(false));
      }),
    );
    k(["apply", "-f", "-"], runnerDeployment("runner-host", hostNatsUrl, 1));
    await available("runner-host", 1);
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(REPO, "bin/jobchain.js"), "submit", path.join(REPO, "examples/pipeline"),
        "--graph", "text_report/brief", "--inputs", path.join(REPO, "examples/pipeline/tasks.jsonl"), "--nats", hostNatsUrl,
        "--timeout", "60"], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d));
      child.stderr.on("data", (d: Buffer) => (stderr += d));
      child.on("exit", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`submit exited ${code}: ${stderr}`))));
    });
    expect(outcomes(out)).toEqual(embedded);
  }, 300_000);

  it("runs the operator on the node: a JobGraph becomes restricted runner pods from the project image, a JobTask succeeds (kubectl wait)", async () => {
    await installCrds(createKubeClient(loadKubeConfig({ kubeconfig: node.kubeconfigPath })));
    // A process of its own: kubectl below runs synchronously and would hold an operator in this process.
    const op = spawn(process.execPath, [path.join(REPO, "bin/jobchain.js"), "operator", "--kubeconfig", node.kubeconfigPath,
      "--nats", hostNatsUrl, "--runner-image", IMAGES.project], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, JOBCHAIN_LOG_LEVEL: "warn" } });
    let opLog = "";
    op.stderr!.on("data", (d: Buffer) => (opLog += d));
    try {
      await eventually("the operator started", () => opLog.includes("started as"));
      // In the namespace that enforces PodSecurity `restricted`: the operator's pods must be admitted there.
      k(["apply", "-n", NS, "-f", path.join(REPO, "examples/k8s/echo-graph.yaml")]);
      const created = k(["create", "-n", NS, "-f", path.join(REPO, "examples/k8s/echo-task.yaml"), "-o", "name"]).trim();
      try {
        k(["wait", "-n", NS, "--for=condition=Succeeded", created, "--timeout=100s"]);
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${k(["get", "jobgraphs,jobtasks", "-n", NS, "-o", "yaml"]).slice(-4000)}${diagnosis()}\noperator: ${opLog.slice(-3000)}`, { cause: e });
      }
      const task = JSON.parse(k(["get", "-n", NS, created, "-o", "json"])) as { status: { result: unknown; progress: string } };
      expect(task.status.result).toEqual({ name: "world", signed: true });
      expect(task.status.progress).toBe("3/3");
      const pod = readyPods("jobchain.dev/graph=echo")[0] ?? pods("jobchain.dev/graph=echo").items[0];
      expect(pod, diagnosis()).toBeDefined();
    } finally {
      k(["delete", "-n", NS, "jobgraph", "echo", "--wait=true", "--timeout=60s"]);
      op.kill("SIGTERM");
      if (op.exitCode === null && op.signalCode === null) await new Promise((r) => op.once("exit", r));
    }
  }, 300_000);

  it("replaces a deleted pod", async () => {
    const victim = readyPods("app=runner")[0]!.metadata.name;
    k(["delete", "pod", "-n", NS, victim, "--wait=false"]);
    await eventually("a replacement pod", () => {
      const ready = readyPods("app=runner");
      return ready.length === 2 && ready.every((p) => p.metadata.name !== victim);
    }, 180_000);
  }, 200_000);

  it("gives a pod a service-account token that RBAC allows and denies by role", () => {
    const script =
      "const fs=require('fs'),https=require('https');const d='/var/run/secrets/kubernetes.io/serviceaccount/';" +
      "const t=fs.readFileSync(d+'token','utf8'),ca=fs.readFileSync(d+'ca.crt');" +
      "const get=p=>new Promise((ok,no)=>https.get({host:'kubernetes.default.svc',path:p,ca,headers:{authorization:'Bearer '+t}}," +
      "r=>{r.resume();ok(r.statusCode)}).on('error',no));" +
      `Promise.all(['/api/v1/namespaces/${NS}/pods','/api/v1/namespaces/${NS}/secrets','/api/v1/namespaces/default/pods'].map(get))` +
      ".then(s=>console.log(JSON.stringify(s)),e=>{console.error(e);process.exit(1)})";
    const out = k(["exec", "-n", NS, readyPods("app=runner")[0]!.metadata.name, "--", "node", "-e", script]);
    // pods in its namespace: allowed by the Role; secrets, and pods elsewhere: denied.
    expect(JSON.parse(out.trim())).toEqual([200, 403, 403]);
  }, 120_000);

  it("admits restricted pods and refuses a privileged one in an `enforce: restricted` namespace", () => {
    const privileged = `apiVersion: v1
kind: Pod
metadata: {name: privileged, namespace: ${NS}}
spec:
  containers:
  - name: c
    image: ${IMAGES.base}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    securityContext: {privileged: true}
`;
    expect(() => k(["apply", "-f", "-"], privileged)).toThrow(/violates PodSecurity "restricted:latest".*privileged/s);
    expect(readyPods("app=runner").length).toBe(2);
  });

  it("binds a PersistentVolumeClaim and keeps its data across a pod restart", async () => {
    const manifests = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ${NS}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keeper, namespace: ${NS}}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: keeper}}
  template:
    metadata: {labels: {app: keeper}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 1000, runAsGroup: 1000}
      containers:
      - name: keeper
        image: ${IMAGES.base}
        imagePullPolicy: Never
        command: [sh, -c, "[ -f /data/marker ] || cat /proc/sys/kernel/random/uuid > /data/marker; exec sleep 3600"]
        ${RESTRICTED}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
`;
    k(["apply", "-f", "-"], manifests);
    await available("keeper", 1);
    expect(k(["get", "pvc", "data", "-n", NS, "-o", "jsonpath={.status.phase}"])).toBe("Bound");
    const first = readyPods("app=keeper")[0]!.metadata.name;
    const marker = k(["exec", "-n", NS, first, "--", "cat", "/data/marker"]).trim();
    expect(marker).toMatch(/^[0-9a-f-]{36}$/);
    k(["delete", "pod", "-n", NS, first, "--wait=false"]);
    const second = await eventually("the keeper's new pod", () => {
      const p = readyPods("app=keeper");
      return p.length === 1 && p[0]!.metadata.name !== first ? p[0]!.metadata.name : undefined;
    }, 180_000);
    expect(k(["exec", "-n", NS, second, "--", "cat", "/data/marker"]).trim()).toBe(marker);
  }, 300_000);

  it("deletes a Deployment's ReplicaSets and pods through their ownerReferences (garbage collector)", async () => {
    const owned = pods("app=runner-host").items;
    expect(owned.length).toBeGreaterThan(0);
    expect(owned[0]!.metadata.ownerReferences?.[0]?.kind).toBe("ReplicaSet");
    k(["delete", "deployment", "runner-host", "-n", NS, "--wait=false"]);
    await eventually("runner-host's ReplicaSets and pods gone", () =>
      k(["get", "replicasets,pods", "-n", NS, "-l", "app=runner-host", "-o", "name"]).trim() === "",
    180_000);
  }, 200_000);

  it("puts the host back when the node stops", async () => {
    hostNats?.kill("SIGKILL");
    hostNats = undefined;
    await node.stop();
    const after = hostSnapshot(CGROUP_ROOT);
    expect(after).toEqual(before);
  }, 180_000);
});
