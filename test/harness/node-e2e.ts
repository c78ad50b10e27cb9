// The local single node (node.ts) as the end-to-end suite's cluster (e2e-cluster.ts). Services are reached from
// the host at their ClusterIP (kube-proxy programs the host's own traffic too), which outlives their pods.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { E2ECluster } from "./e2e-cluster.ts";
import { must } from "./node-host.ts";
import { NODE_NAME, startNode, type KubeNode } from "./node.ts";

/** kubectl with a cluster's env; stdout, or an Error carrying stderr. */
export function kubectlWith(kubectl: string, env: Record<string, string>, args: string[], input?: string, timeoutMs = 120_000): string {
  try {
    return execFileSync(kubectl, args, {
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      ...(input !== undefined ? { input } : {}),
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(" ")}: ${(err.stderr || err.message).trim()}`, { cause: e });
  }
}

/** What went on in a namespace: pods, their descriptions and logs (current and previous), events. */
export function namespaceDiagnostics(kubectl: (args: string[]) => string, namespace: string): string {
  const out: string[] = [];
  const section = (title: string, args: string[], quiet = false) => {
    let text: string;
    try {
      text = kubectl(args);
    } catch (e) {
      text = quiet ? "" : (e as Error).message;
    }
    if (text.trim()) out.push(`----- ${title}\n${text.trimEnd()}`);
  };
  section(`pods in ${namespace}`, ["get", "pods,deployments,statefulsets,pvc", "-n", namespace, "-o", "wide"]);
  section(`events in ${namespace}`, ["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]);
  let pods: string[] = [];
  try {
    pods = kubectl(["get", "pods", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}"]).split(/\s+/).filter(Boolean);
  } catch {
    // listed above with the error
  }
  for (const pod of pods) {
    section(`describe pod ${pod}`, ["describe", "pod", "-n", namespace, pod]);
    section(`logs ${pod}`, ["logs", "-n", namespace, pod, "--all-containers", "--tail=200"]);
    section(`previous logs ${pod}`, ["logs", "-n", namespace, pod, "--all-containers", "--tail=100", "--previous"], true);
  }
  return out.join("\n");
}

/** `scheme://<ClusterIP>:port` of a Service: host-reachable on the local node and on kind, and kept across pod restarts. */
export function clusterIpUrl(kubectl: (args: string[]) => string, namespace: string, service: string, port: number, scheme: string): { url: string; close(): Promise<void> } {
  const ip = kubectl(["get", "service", "-n", namespace, service, "-o", "jsonpath={.spec.clusterIP}"]).trim();
  if (!ip || ip === "None") throw new Error(`service ${namespace}/${service} has no ClusterIP`);
  return { url: `${scheme}://${ip}:${port}`, close: async () => {} };
}

/**
 * SIGKILLs the main process of each running container of a pod, found through the CRI (`crictl` as given: on the
 * host, or in kind's node container); `kill` sends the signal in the same PID namespace crictl reports.
 */
export function killPodProcesses(crictl: (args: string[]) => string, kill: (pid: number) => void, namespace: string, pod: string): number[] {
  const sandboxes = crictl(["pods", "-q", "--namespace", namespace, "--name", `^${pod}$`, "--state", "ready"]).split(/\s+/).filter(Boolean);
  if (sandboxes.length !== 1) throw new Error(`pod ${namespace}/${pod}: ${sandboxes.length} ready sandboxes on the node`);
  const containers = crictl(["ps", "-q", "--pod", sandboxes[0]!, "--state", "running"]).split(/\s+/).filter(Boolean);
  if (containers.length === 0) throw new Error(`pod ${namespace}/${pod} has no running container`);
  return containers.map((id) => {
    const pid = Number((JSON.parse(crictl(["inspect", id])) as { info?: { pid?: number } }).info?.pid);
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`container ${id} of ${namespace}/${pod}: no PID in crictl inspect`);
    kill(pid);
    return pid;
  });
}

/** PersistentVolumes of `storageClassName` not bound yet. */
export function availableVolumes(kubectl: (args: string[]) => string, storageClassName: string): number {
  const pvs = JSON.parse(kubectl(["get", "pv", "-o", "json"])) as { items: { spec: { storageClassName?: string }; status: { phase: string } }[] };
  return pvs.items.filter((pv) => pv.spec.storageClassName === storageClassName && pv.status.phase === "Available").length;
}

/** A local PersistentVolume of `storageClassName` in directory `dir` of the node `hostname`. */
export function localVolumeYaml(name: string, dir: string, size: string, storageClassName: string, hostname: string): string {
  return `apiVersion: v1
kind: PersistentVolume
metadata: {name: ${name}}
spec:
  capacity: {storage: ${size}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ${storageClassName}
  local: {path: ${dir}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [${hostname}]}
`;
}

export async function startNodeE2ECluster(progress?: (line: string) => void): Promise<E2ECluster & { node: KubeNode }> {
  const node = await startNode(progress ? { progress } : {});
  const k = (args: string[], input?: string) => kubectlWith(node.kubectl, node.env, args, input);
  let extraVolumes = 0;
  return {
    flavor: "node",
    node,
    kubectl: node.kubectl,
    env: node.env,
    async loadImageArchive(archive) {
      node.importImage(archive);
    },
    serviceUrl: async (namespace, service, port, scheme) => clusterIpUrl(k, namespace, service, port, scheme),
    async ensureVolumes(count, size) {
      let free = availableVolumes(k, "jobchain-local");
      while (free < count) {
        const name = `jobchain-e2e-${extraVolumes++}`;
        const dir = path.join(node.dir, "volumes", name);
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o1777); // pods run as non-root users; a local volume has no fsGroup handling
        k(["apply", "-f", "-"], localVolumeYaml(name, dir, size, "jobchain-local", NODE_NAME));
        free++;
      }
      return { storageClassName: "jobchain-local" };
    },
    killPodProcesses: (namespace, pod) => {
      const crictl = (args: string[]) =>
        must(path.join(node.binDir, "crictl"), ["--runtime-endpoint", `unix://${node.state().containerdSocket}`, ...args]);
      return killPodProcesses(crictl, (pid) => process.kill(pid, "SIGKILL"), namespace, pod);
    },
    diagnostics: (namespace) => namespaceDiagnostics(k, namespace),
    stop: () => node.stop(),
  };
}
