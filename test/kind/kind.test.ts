// A kind cluster from the node image made on this machine (or JOBCHAIN_KIND_NODE_IMAGE): the node becomes Ready,
// a pod of the project image (loaded from its archive) runs `jobchain --version` to completion, a 1Gi claim of the
// default class binds, and the cluster's deletion leaves the host as it was. Run by `make e2e-kind`
// (JOBCHAIN_E2E_CLUSTER=kind); `make test` reports it as skipped.
import { readFileSync } from "node:fs";
import { existsSync } from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kindSkipReason, startKindE2ECluster, type KindE2ECluster } from "../harness/kind.ts";
import { kubectlWith } from "../harness/node-e2e.ts";
import { imageArchivesDir, readNodeState } from "../harness/node.ts";
import { readSysctls } from "../harness/node-host.ts";

const wanted = process.env.JOBCHAIN_E2E_CLUSTER === "kind";
const skip = wanted ? kindSkipReason() : "run with `make e2e-kind` (JOBCHAIN_E2E_CLUSTER=kind)";
if (wanted && skip) console.error(`kind smoke test skipped: ${skip}`);

const out = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: "utf8" }).stdout ?? "";

/** What this machine looks like from the outside: network, mounts, processes, sysctls. */
function hostSnapshot() {
  return {
    iptables: out("iptables-save", []).split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/, "")),
    ip6tables: out("ip6tables-save", []).split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/, "")),
    links: out("ip", ["-o", "link"]).split("\n").map((l) => l.split(":")[1]?.trim() ?? "").filter(Boolean).sort(),
    routes: out("ip", ["route"]).split("\n").filter(Boolean).sort(),
    mounts: readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter(Boolean).sort(),
    processes: out("ps", ["-eo", "args"]).split("\n").filter((l) => /jobchain-kind|docker-proxy|dockerd/.test(l) && !/\bps\b/.test(l)),
    sysctls: readSysctls(),
  };
}

describe.skipIf(skip)("kind cluster (local node image)", () => {
  let cluster: KindE2ECluster;
  let before: ReturnType<typeof hostSnapshot>;
  let nodeRunningBefore = false;
  const k = (args: string[], input?: string) => kubectlWith(cluster.kubectl, cluster.env, args, input);

  beforeAll(async () => {
    nodeRunningBefore = readNodeState() !== undefined;
    before = hostSnapshot();
    cluster = await startKindE2ECluster((line) => console.error(line));
  }, 3_600_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it("has a Ready node", () => {
    const ready = k(["get", "nodes", "-o", "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}"]);
    expect(ready).toBe("True");
    expect(k(["get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeletVersion}"])).toMatch(/^v1\.35\./);
  });

  it("runs `jobchain --version` in a pod of the project image loaded from its archive", async () => {
    const archive = path.join(imageArchivesDir(), "jobchain.tar");
    expect(existsSync(archive), `${archive} (make images)`).toBe(true);
    await cluster.loadImageArchive(archive);
    k(["apply", "-f", "-"], `apiVersion: v1
kind: Pod
metadata: {name: jobchain-version, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: jobchain
    image: jobchain.local/jobchain:dev
    imagePullPolicy: Never
    args: ["--version"]
`);
    k(["wait", "pod/jobchain-version", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=180s"]);
    const version = (JSON.parse(readFileSync(path.resolve("package.json"), "utf8")) as { version: string }).version;
    expect(k(["logs", "jobchain-version"])).toContain(version);
  }, 300_000);

  it("resolves cluster names from a pod (CoreDNS up)", () => {
    k(["apply", "-f", "-"], `apiVersion: v1
kind: Pod
metadata: {name: resolver, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: resolver
    image: jobchain.local/jobchain:dev
    imagePullPolicy: Never
    command: ["node", "-e", "require('dns').lookup('kubernetes.default.svc.cluster.local', (e, a) => { if (e) { console.error(e.message); process.exit(1) } console.log(a) })"]
`);
    k(["wait", "pod/resolver", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=180s"]);
    expect(k(["logs", "resolver"]).trim()).toBe(k(["get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"]));
  }, 300_000);

  it("binds a 1Gi claim of the default class to a volume of ensureVolumes()", async () => {
    const { storageClassName } = await cluster.ensureVolumes(1, "1Gi");
    expect(storageClassName).toBe("standard");
    k(["apply", "-f", "-"], `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ${storageClassName}
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer, namespace: default}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  containers:
  - name: writer
    image: jobchain.local/jobchain:dev
    imagePullPolicy: Never
    command: ["node", "-e", "require('fs').writeFileSync('/data/x', 'ok'); console.log(require('fs').readFileSync('/data/x', 'utf8'))"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`);
    k(["wait", "pod/writer", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=180s"]);
    expect(k(["get", "pvc", "data", "-o", "jsonpath={.status.phase}"])).toBe("Bound");
    expect(k(["logs", "writer"]).trim()).toBe("ok");
  }, 300_000);

  it("leaves the host as it was once the cluster is deleted", async () => {
    await cluster.stop();
    const after = hostSnapshot();
    expect(after.processes).toEqual(before.processes);
    expect(after.links.filter((l) => l.startsWith("jobchain-kind"))).toEqual([]);
    expect(after.routes.filter((r) => r.includes("172.31.97.") || r.startsWith("10.96."))).toEqual([]);
    expect(after.mounts.filter((m) => m.includes("jobchain-kind") || m.includes("/kind/docker"))).toEqual([]);
    if (!nodeRunningBefore && readNodeState() === undefined) {
      // No local node came or went meanwhile: the whole picture is comparable.
      expect(after.iptables).toEqual(before.iptables);
      expect(after.ip6tables).toEqual(before.ip6tables);
      expect(after.links).toEqual(before.links);
      expect(after.routes).toEqual(before.routes);
      expect(after.mounts).toEqual(before.mounts);
      expect(after.sysctls).toEqual(before.sysctls);
    }
  }, 300_000);
});
