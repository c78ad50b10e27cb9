// The real single-node Kubernetes of test/harness/node.ts: how long it takes to start with warm caches (components
// built, images archived), to get a Deployment of the project image Ready, and to replace a deleted pod; and how
// big the project image is. Fails (with the reason) where no node can run here, or one is already running.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import path from "node:path";
import { IMAGES, imageArchivesDir, nodeAlive, nodeSkipReason, readNodeState, startNode, type KubeNode } from "../../test/harness/node.ts";
import { restrictedSecurityContextYaml } from "../../test/harness/node-config.ts";
import type { BenchRow, BenchSuite } from "../types.ts";

const NS = "bench";
const REPLICAS = 2;

function kubectl(node: KubeNode, args: string[], input?: string): string {
  return execFileSync(node.kubectl, args, { env: { ...process.env, ...node.env }, encoding: "utf8", ...(input ? { input } : {}) });
}

function readyPods(node: KubeNode): string[] {
  const list = JSON.parse(kubectl(node, ["get", "pods", "-n", NS, "-l", "app=bench", "-o", "json"])) as {
    items: { metadata: { name: string; deletionTimestamp?: string }; status: { conditions?: { type: string; status: string }[] } }[];
  };
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
    .map((p) => p.metadata.name);
}

async function until(what: string, probe: () => boolean, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: bench, namespace: ${NS}}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: idle
        image: ${IMAGES.project}
        imagePullPolicy: IfNotPresent
        command: [node, -e, "setInterval(() => {}, 1 << 30)"]
        ${restrictedSecurityContextYaml(8)}
`;

const suite: BenchSuite = {
  name: "real node (kubelet + containerd)",
  async run() {
    const reason = nodeSkipReason({ images: ["jobchain"] });
    if (reason) throw new Error(`no node here: ${reason}`);
    const running = readNodeState();
    if (running && nodeAlive(running)) throw new Error("a node is already running (make cluster-down)");
    const rows: BenchRow[] = [];
    const node = await startNode({ images: ["pause", "jobchain"] });
    try {
      rows.push({ name: "node start, warm caches (control plane, components, image import, Ready, CoreDNS)", value: node.startupMs, unit: "ms" });
      kubectl(node, ["create", "namespace", NS]);
      let t = Date.now();
      kubectl(node, ["apply", "-f", "-"], deployment);
      await until("bench pods Ready", () => readyPods(node).length === REPLICAS);
      rows.push({ name: `kubectl apply of a ${REPLICAS}-replica Deployment (project image) → pods Ready`, value: Date.now() - t, unit: "ms" });
      const victim = readyPods(node)[0]!;
      t = Date.now();
      kubectl(node, ["delete", "pod", "-n", NS, victim, "--wait=false"]);
      await until("replacement Ready", () => {
        const ready = readyPods(node);
        return ready.length === REPLICAS && !ready.includes(victim);
      });
      rows.push({ name: "deleted pod → replacement Ready", value: Date.now() - t, unit: "ms" });
    } finally {
      await node.stop();
    }
    const archive = path.join(imageArchivesDir(), "jobchain.tar");
    rows.push({ name: `project image ${IMAGES.project} (uncompressed layers)`, value: statSync(archive).size / 1e6, unit: "MB" });
    return rows;
  },
};

export default suite;
