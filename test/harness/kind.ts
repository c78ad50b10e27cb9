// Test harness: a kind cluster (one node) as the end-to-end suite's cluster (e2e-cluster.ts).
//
//   const cluster = await startKindE2ECluster(console.error);
//   execFileSync(cluster.kubectl, ["get", "nodes"], { env: { ...process.env, ...cluster.env } });
//   await cluster.stop();                         // deletes the cluster and puts the host back
//
// Two ways to run, chosen by JOBCHAIN_KIND_NODE_IMAGE:
//   unset (local)   the node image is made here (scripts/kind/node-image.sh) and kind runs on the private engine of
//                   scripts/kind/engine.sh (no default bridge, no iptables, no IP forwarding; the image-build lock is
//                   held while it runs); its networks and processes go when the cluster stops, or when this process
//                   dies (the engine's stdin is this process's pipe)
//   an image name   e.g. kindest/node:v1.35.0 on a machine with Docker and a registry: kind uses the machine's Docker
//                   engine (DOCKER_HOST or its default socket) as it is
// Services are reached from the host at their ClusterIP: a route for the Service range via the node's address on
// the kind network (the node's kube-proxy does the rest), which outlives the Service's pods.
// The node's kubelet sets a few global sysctls (vm.overcommit_memory, kernel.panic, ...); those recorded before the
// start are written back when the cluster stops.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { E2ECluster } from "./e2e-cluster.ts";
import { cacheDir, pinnedVersions } from "./controlplane.ts";
import { onProcessExit } from "./exit-hooks.ts";
import { availableVolumes, clusterIpUrl, killPodProcesses, kubectlWith, localVolumeYaml, namespaceDiagnostics } from "./node-e2e.ts";
import { readSysctls, restoreSysctls } from "./node-host.ts";
import { nodeComponentsDir } from "./node.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CLUSTER_NAME = "jobchain-e2e";
const NODE_CONTAINER = `${CLUSTER_NAME}-control-plane`;
/** kind's defaults, outside the local node's 10.214.0.0/16; they live inside the node container's namespace. */
const POD_SUBNET = "10.244.0.0/16";
const SERVICE_SUBNET = "10.96.0.0/16";
const STORAGE_CLASS = "standard";
const VOLUMES_DIR = "/var/local-volumes";

function sh(cmd: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error ? String(r.error) : "") };
}

function must(cmd: string, args: string[], opts: Parameters<typeof sh>[2] = {}): string {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? "killed"}):\n${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The kind binary (scripts/kind/build.sh), or why there is none. */
export function kindBinary(): { path: string } | { reason: string } {
  const v = pinnedVersions();
  const root = path.join(cacheDir(), "kind", v.KIND_VERSION ?? "");
  const marker = path.join(root, "UNAVAILABLE");
  if (existsSync(marker)) return { reason: `kind is not built: ${readFileSync(marker, "utf8").trim()}` };
  const bin = path.join(root, "bin", "kind");
  return existsSync(bin) ? { path: bin } : { reason: `kind is not built in ${root} (run \`make kind\`)` };
}

/** Undefined when a kind cluster can be started here; otherwise why not. */
export function kindSkipReason(): string | undefined {
  if (process.platform !== "linux") return `kind needs Linux here (this is ${process.platform})`;
  const kind = kindBinary();
  if ("reason" in kind) return kind.reason;
  if (process.env.JOBCHAIN_KIND_NODE_IMAGE) {
    return sh("docker", ["version"]).status === 0 ? undefined : "JOBCHAIN_KIND_NODE_IMAGE is set but `docker version` fails";
  }
  if (process.getuid?.() !== 0) return "the local kind node image and engine need root";
  for (const c of ["dockerd", "containerd", "debootstrap"]) {
    if (sh("sh", ["-c", `command -v ${c}`]).status !== 0) return `${c} is missing (run \`make node-packages\`)`;
  }
  return undefined;
}

/** kind's cluster configuration: one node; kubeadm patches for this machine (cgroup v1) and the local images. */
function clusterConfig(local: boolean): string {
  const v = pinnedVersions();
  const patches = [
    // Kubernetes 1.35's kubelet refuses cgroup v1 unless told otherwise; harmless on cgroup v2.
    "kind: KubeletConfiguration\nfailCgroupV1: false",
  ];
  if (local) {
    // The local image's containerd uses cgroupfs (scripts/kind/node/etc/containerd/config.toml), so does the kubelet.
    patches[0] += "\ncgroupDriver: cgroupfs";
    // The local image's etcd and CoreDNS carry their own versions (scripts/kind/node-image.sh).
    patches.push(
      `kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: ${v.ETCD_VERSION}\ndns:\n  imageTag: ${v.COREDNS_VERSION}`,
      // The kernel's configuration is not readable in every VM; the rest of kubeadm's checks stay.
      "kind: InitConfiguration\nnodeRegistration:\n  ignorePreflightErrors: [SystemVerification]",
    );
  }
  return [
    "kind: Cluster",
    "apiVersion: kind.x-k8s.io/v1alpha4",
    "networking:",
    `  podSubnet: ${POD_SUBNET}`,
    `  serviceSubnet: ${SERVICE_SUBNET}`,
    "  apiServerAddress: 127.0.0.1",
    "nodes:",
    "- role: control-plane",
    "kubeadmConfigPatches:",
    ...patches.map((p) => `- |\n${p.replace(/^/gm, "  ")}`),
    "",
  ].join("\n");
}

interface Engine {
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** The private engine (scripts/kind/engine.sh run): resolves once it says `ready <socket>`. */
async function startEngine(shimDir: string, say: (line: string) => void): Promise<Engine> {
  const child: ChildProcess = spawn(path.join(REPO_ROOT, "scripts/kind/engine.sh"), ["run"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, JOBCHAIN_CACHE_DIR: cacheDir() },
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    for (const line of d.toString().split("\n")) if (line.trim()) say(line);
  });
  const socket = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^ready (\S+)$/m.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`scripts/kind/engine.sh exited (${code}) before it was ready:\n${err.trim()}`)));
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  // The engine cleans up when its stdin closes: at our exit, however it comes.
  onProcessExit(() => {
    if (child.exitCode === null) child.stdin?.end();
  });
  return {
    // kind calls `docker`: Debian's client (the engine's release) first on PATH, talking to this engine.
    env: { DOCKER_HOST: `unix://${socket}`, PATH: `${shimDir}:${process.env.PATH ?? ""}` },
    async stop() {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGTERM"), 120_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface KindE2ECluster extends E2ECluster {
  readonly name: string;
  readonly nodeContainer: string;
  readonly nodeImage: string;
  /** Milliseconds from the call until the node was Ready. */
  readonly startupMs: number;
  /** `docker exec` into the node container. */
  exec(args: string[], input?: string): string;
}

/** Builds what is missing (the node image when local), starts the cluster and resolves once its node is Ready. */
export async function startKindE2ECluster(progress?: (line: string) => void): Promise<KindE2ECluster> {
  const t0 = Date.now();
  const say = progress ?? (() => {});
  const skip = kindSkipReason();
  if (skip) throw new Error(`no kind cluster here: ${skip}`);
  const kind = (kindBinary() as { path: string }).path;
  const pulled = process.env.JOBCHAIN_KIND_NODE_IMAGE;
  const local = !pulled;
  const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-kind-"));
  const kubeconfigPath = path.join(dir, "kubeconfig");
  const sysctlsBefore = readSysctls();

  let nodeImage = pulled ?? "";
  let engine: Engine | undefined;
  let dockerEnv: Record<string, string> = {};
  if (local) {
    say("kind: node image (scripts/kind/node-image.sh; built once, minutes)");
    const r = sh(path.join(REPO_ROOT, "scripts/kind/node-image.sh"), [], { timeoutMs: 3_600_000 });
    if (r.status !== 0) throw new Error(`scripts/kind/node-image.sh failed:\n${r.stderr.trim().split("\n").slice(-30).join("\n")}`);
    nodeImage = r.stdout.trim().split("\n").pop()!;
    const shimDir = path.join(dir, "bin");
    must("mkdir", ["-p", shimDir]);
    must("ln", ["-s", "/usr/bin/docker", path.join(shimDir, "docker")]);
    say("kind: starting the kind engine (scripts/kind/engine.sh)");
    engine = await startEngine(shimDir, say);
    dockerEnv = engine.env;
  }
  const kindEnv = { ...dockerEnv, KIND_EXPERIMENTAL_PROVIDER: "docker" };
  const docker = (args: string[], input?: string) =>
    must("docker", args, { env: kindEnv, ...(input !== undefined ? { input } : {}) });

  let route: string | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const problems: string[] = [];
    if (route) {
      const r = sh("ip", ["route", "del", SERVICE_SUBNET]);
      if (r.status !== 0 && !/No such process|Cannot find/.test(r.stderr)) problems.push(`route ${SERVICE_SUBNET}: ${r.stderr.trim()}`);
    }
    const d = sh(kind, ["delete", "cluster", "--name", CLUSTER_NAME], { env: kindEnv, timeoutMs: 180_000 });
    if (d.status !== 0) problems.push(`kind delete cluster: ${d.stderr.trim()}`);
    await engine?.stop();
    problems.push(...restoreSysctls(sysctlsBefore).map((s) => `sysctl ${s}`));
    rmSync(dir, { recursive: true, force: true });
    if (problems.length) throw new Error(`the kind cluster did not stop cleanly:\n${problems.join("\n")}`);
  };
  onProcessExit(() => {
    if (stopped) return;
    if (route) sh("ip", ["route", "del", SERVICE_SUBNET]);
    if (!local) sh(kind, ["delete", "cluster", "--name", CLUSTER_NAME], { env: kindEnv, timeoutMs: 60_000 });
    restoreSysctls(sysctlsBefore);
  });

  const kubectl = path.join(nodeComponentsDir(), "bin", "kubectl");
  const kubectlBin = existsSync(kubectl) ? kubectl : "kubectl";
  const env = { KUBECONFIG: kubeconfigPath };
  const k = (args: string[], input?: string, timeoutMs?: number) => kubectlWith(kubectlBin, env, args, input, timeoutMs);

  try {
    // A cluster of this name left by a killed run of the machine's engine (the private one starts empty).
    sh(kind, ["delete", "cluster", "--name", CLUSTER_NAME], { env: kindEnv });
    const configPath = path.join(dir, "kind.yaml");
    writeFileSync(configPath, clusterConfig(local));
    say(`kind: kind create cluster --image ${nodeImage}`);
    const c = sh(kind, ["create", "cluster", "--name", CLUSTER_NAME, "--image", nodeImage, "--config", configPath,
      "--kubeconfig", kubeconfigPath, "--wait", "240s"], { env: kindEnv, timeoutMs: 600_000 });
    if (c.status !== 0) {
      const logs = sh("docker", ["logs", "--tail", "60", NODE_CONTAINER], { env: kindEnv });
      const kubelet = sh("docker", ["exec", NODE_CONTAINER, "journalctl", "-u", "kubelet", "--no-pager", "-n", "40"], { env: kindEnv });
      throw new Error(`kind create cluster failed:\n${(c.stderr + c.stdout).trim()}\n--- node container log\n${logs.stdout}${logs.stderr}` +
        `\n--- kubelet\n${kubelet.stdout}${kubelet.stderr}`);
    }
    const nodeIP = docker(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", NODE_CONTAINER]).trim();
    must("ip", ["route", "replace", SERVICE_SUBNET, "via", nodeIP]);
    route = SERVICE_SUBNET;
    if (local) {
      // kubeadm's Corefile forwards other names to the node's resolv.conf, which on a machine without an upstream
      // resolver points back at a loopback address: CoreDNS's loop plugin then stops it. Without a registry there is
      // nothing outside the cluster to resolve, so the local cluster answers cluster names only, as the node does.
      say("kind: CoreDNS answers cluster names only");
      k(["-n", "kube-system", "patch", "configmap", "coredns", "--type", "merge", "-p", JSON.stringify({ data: { Corefile: CLUSTER_ONLY_COREFILE } })]);
      k(["-n", "kube-system", "rollout", "restart", "deployment/coredns"]);
      k(["-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s"], undefined, 200_000);
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }

  let volumes = 0;
  const startupMs = Date.now() - t0;
  say(`kind: cluster ${CLUSTER_NAME} Ready in ${(startupMs / 1000).toFixed(1)} s`);

  return {
    flavor: "kind",
    name: CLUSTER_NAME,
    nodeContainer: NODE_CONTAINER,
    nodeImage,
    startupMs,
    kubectl: kubectlBin,
    env,
    exec: (args, input) => docker(["exec", ...(input !== undefined ? ["-i"] : []), NODE_CONTAINER, ...args], input),
    async loadImageArchive(archive) {
      must(kind, ["load", "image-archive", archive, "--name", CLUSTER_NAME], { env: kindEnv });
    },
    serviceUrl: async (namespace, service, port, scheme) => clusterIpUrl(k, namespace, service, port, scheme),
    async ensureVolumes(count, size) {
      let free = availableVolumes(k, STORAGE_CLASS);
      while (free < count) {
        const name = `jobchain-e2e-${volumes++}`;
        const volumeDir = `${VOLUMES_DIR}/${name}`;
        // Pods run as non-root users; a local volume has no fsGroup handling.
        docker(["exec", NODE_CONTAINER, "sh", "-c", `mkdir -p ${volumeDir} && chmod 1777 ${volumeDir}`]);
        k(["apply", "-f", "-"], localVolumeYaml(name, volumeDir, size, STORAGE_CLASS, NODE_CONTAINER));
        free++;
      }
      return { storageClassName: STORAGE_CLASS };
    },
    killPodProcesses: (namespace, pod) =>
      killPodProcesses((args) => docker(["exec", NODE_CONTAINER, "crictl", ...args]), (pid) => void docker(["exec", NODE_CONTAINER, "kill", "-KILL", String(pid)]), namespace, pod),
    diagnostics(namespace) {
      const node = sh("docker", ["exec", NODE_CONTAINER, "journalctl", "-u", "kubelet", "--no-pager", "-n", "60"], { env: kindEnv });
      return `${namespaceDiagnostics(k, namespace)}\n----- kubelet (last lines)\n${node.stdout}${node.stderr}`;
    },
    stop,
  };
}

/** kubeadm's default Corefile without `forward` and `loop`. */
const CLUSTER_ONLY_COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    reload
    loadbalance
}
`;

