// Test harness: a real single-node Kubernetes on this machine — the control plane of controlplane.ts in node mode,
// containerd + runc + the CNI bridge (Debian's packages), kubelet, kube-proxy (iptables), kube-controller-manager,
// kube-scheduler and CoreDNS (a host process on the node IP), with the images of scripts/images/build.sh imported
// into containerd (no registry: pods use `imagePullPolicy: IfNotPresent` or `Never`).
//
//   const node = await startNode();               // one per machine; throws NodeBusyError when one runs
//   execFileSync(node.kubectl, ["get", "nodes"], { env: { ...process.env, ...node.env } });
//   await node.stop();                            // stops everything and puts the host back (node-host.ts)
//
// Network (nothing leaves the machine): the node IP is the pods' gateway on their CNI bridge, which the harness
// creates; pods get host-local addresses on it and no masquerading, and the egress guard (chain JOBCHAIN-EGRESS) rejects what a
// pod sends anywhere but the bridge and the node; CoreDNS has no upstream. The API server, the kubelet, kube-proxy
// and CoreDNS listen on the node IP or loopback.
//
// One node per machine: /run/jobchain-node/state.json is the lock and holds everything needed to stop the node from
// another process (stopNodeByState) — written before the first change to the host, with the values to restore.
// A state whose processes are gone (the starter was killed with -9) is cleaned up by the next start.
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { onProcessExit } from "./exit-hooks.ts";
import {
  alive,
  cacheDir,
  certKubeconfigYaml,
  controlPlaneVersions,
  findControlPlaneBinaries,
  freePorts,
  issueCertificate,
  killGroup,
  pinnedVersions,
  sleep,
  startControlPlane,
  startProcess,
  tail,
  type ControlPlane,
  type ControlPlaneState,
  type Proc,
} from "./controlplane.ts";
import {
  CGROUP_ROOT,
  NODE_NAME,
  NODE_NETWORK,
  clusterAddonsYaml,
  cniConflist,
  containerdToml,
  corefile,
  kubeletConfigYaml,
  kubeProxyConfigYaml,
} from "./node-config.ts";
import {
  FIXED_PATHS,
  bridgePorts,
  cgroupHierarchies,
  cgroupPids,
  deleteLink,
  existing,
  iptablesTables,
  linkExists,
  must,
  netnsNames,
  readSysctls,
  removeCgroups,
  removeCreatedPaths,
  removeIptables,
  restoreSysctls,
  run,
  unmountUnder,
} from "./node-host.ts";

export { NODE_NAME, NODE_NETWORK } from "./node-config.ts";

export const NODE_STATE_DIR = "/run/jobchain-node";
const STATE_FILE = path.join(NODE_STATE_DIR, "state.json");
const COMPONENTS = ["kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler", "kubectl", "coredns", "crictl"] as const;
/** Images every node gets (scripts/images/build.sh); the project image is added by `make image`. */
export const IMAGES = {
  pause: "jobchain.local/pause:1",
  base: "jobchain.local/base:node24-bookworm",
  nats: "jobchain.local/nats-server:2.12.15",
  project: "jobchain.local/jobchain:dev",
} as const;

export class NodeBusyError extends Error {
  readonly state: NodeState;
  constructor(state: NodeState) {
    super(
      `a Kubernetes node is already running on this machine (started ${state.startedAt} by pid ${state.owner.pid}` +
        `${state.owner.detached ? ", `make cluster-up`" : ""}; working dir ${state.dir}): one node per machine — ` +
        "stop it with `make cluster-down` (or wait for the test run that owns it)",
    );
    this.name = "NodeBusyError";
    this.state = state;
  }
}

export class NodeStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NodeStartError";
  }
}

/** Everything stopNodeByState() needs, written to STATE_FILE before the host is changed and as the start goes. */
export interface NodeState {
  version: 1;
  /** The process that started the node; `since` is its start time (tells a reused pid apart). */
  owner: { pid: number; since: string; detached: boolean };
  dir: string;
  keepDir: boolean;
  startedAt: string;
  binDir: string;
  network: typeof NODE_NETWORK;
  cgroupRoot: string;
  before: {
    sysctls: Record<string, string>;
    paths: Record<string, boolean>;
    iptablesTables: Record<"ip" | "ip6", string[]>;
    netns: string[];
  };
  containerdSocket: string;
  /** Process (= process group) ids of the node's components. */
  pids: Record<string, number>;
  controlPlane?: ControlPlaneState;
  kubeconfigPath?: string;
}

// ---- can a node run here? ------------------------------------------------------------------------------------

/** Where `make node-components` puts this version's build. */
export function nodeComponentsDir(): string {
  const v = readVersions();
  return path.join(cacheDir(), "node", `k8s-${v.KUBERNETES_VERSION}_coredns-${v.COREDNS_VERSION}_crictl-${v.CRICTL_VERSION}`);
}

function readVersions(): Record<string, string> {
  const vars = pinnedVersions();
  if (process.env.JOBCHAIN_KUBERNETES_VERSION) vars.KUBERNETES_VERSION = process.env.JOBCHAIN_KUBERNETES_VERSION;
  return vars;
}

export function imageArchivesDir(): string {
  return path.join(cacheDir(), "images", "archives");
}

const BINARIES_ON_HOST = ["containerd", "containerd-shim-runc-v2", "runc", "iptables", "iptables-save", "iptables-restore",
  "ip6tables-save", "nft", "ip", "mount", "umount", "openssl"] as const;
const CNI_BIN_DIR = "/usr/lib/cni";

/**
 * Undefined when a real node can run here; otherwise why not (for a suite's skip note and cluster-up's message).
 * Needs root, overlayfs, cgroups, Debian's containerd/runc/CNI plugins and iptables (`make node-packages`), the node
 * components (`make node-components`) and the pause image (`make images`).
 */
export function nodeSkipReason(opts: { images?: string[] } = {}): string | undefined {
  if (process.platform !== "linux") return `a node needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "a node needs root (containerd, kubelet, iptables, mounts)";
  const cp = findControlPlaneBinaries();
  if (!cp.available) return cp.reason;
  let fs = "";
  try {
    fs = readFileSync("/proc/filesystems", "utf8");
  } catch {
    /* below */
  }
  if (!/\boverlay\b/.test(fs)) {
    // Not listed until the module is loaded; containerd loads it. Try once.
    run("modprobe", ["overlay"]);
    if (!/\boverlay\b/.test(readFileSync("/proc/filesystems", "utf8"))) return "the kernel has no overlayfs";
  }
  const hierarchies = cgroupHierarchies();
  if (!hierarchies.some((h) => /memory/.test(h)) && !hierarchies.some((h) => h === "/sys/fs/cgroup")) {
    return "no memory cgroup mounted under /sys/fs/cgroup";
  }
  const missing = BINARIES_ON_HOST.filter((b) => run("sh", ["-c", `command -v ${b}`]).status !== 0);
  if (!existsSync(path.join(CNI_BIN_DIR, "bridge"))) missing.push("containernetworking-plugins" as never);
  if (missing.length) return `missing on this machine: ${missing.join(", ")} (run \`make node-packages\`)`;
  const dir = nodeComponentsDir();
  const marker = path.join(dir, "UNAVAILABLE");
  if (existsSync(marker)) return `no node components: ${readFileSync(marker, "utf8").trim()}`;
  const bin = path.join(dir, "bin");
  const absent = COMPONENTS.filter((c) => !existsSync(path.join(bin, c)));
  if (absent.length) return `node components not built in ${dir} (${absent.join(", ")}; run \`make node-components\`)`;
  for (const image of ["pause", ...(opts.images ?? [])]) {
    if (!existsSync(path.join(imageArchivesDir(), `${image}.tar`))) {
      return `image archive ${image}.tar not built in ${imageArchivesDir()} (run \`make images\`)`;
    }
  }
  return undefined;
}

// ---- state and lock ------------------------------------------------------------------------------------------

export function readNodeState(): NodeState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, "utf8")) as NodeState;
  } catch {
    return undefined;
  }
}

function writeState(state: NodeState, exclusive = false): void {
  mkdirSync(NODE_STATE_DIR, { recursive: true });
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`, { flag: exclusive ? "wx" : "w", mode: 0o600 });
}

/** The start time of a process (field 22 of /proc/PID/stat), "" when it is gone. */
function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** Whether a process runs (a killed one whose parent has not reaped it yet is a zombie: not running). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function ownerAlive(state: NodeState): boolean {
  return state.owner.since !== "" && processStart(state.owner.pid) === state.owner.since;
}

/**
 * Whether the node of a state is in use: a test's node while the process that started it lives (its death, even
 * by kill -9, makes the node stale); a detached node (`make cluster-up`) while its kubelet and containerd run or
 * its start is going on.
 */
export function nodeAlive(state: NodeState): boolean {
  if (ownerAlive(state)) return true;
  if (!state.owner.detached) return false;
  const { kubelet, containerd } = state.pids;
  return kubelet !== undefined && containerd !== undefined && running(kubelet) && running(containerd);
}

// ---- stop ----------------------------------------------------------------------------------------------------

/**
 * Stops the node of `state` and puts the host back; synchronous (usable from an exit hook) and idempotent.
 * Returns what could not be put back (empty when the host is as before).
 */
export function stopNodeByStateSync(state: NodeState): string[] {
  const problems: string[] = [];
  const bin = (c: string) => path.join(state.binDir, c);
  const p = state.pids;
  // 1. No more pods: kubelet first, then every sandbox through the CRI (CNI DEL frees the veth, netns and address).
  if (p.kubelet) killGroup(p.kubelet);
  if (p.containerd && alive(p.containerd)) {
    run(bin("crictl"), ["--runtime-endpoint", `unix://${state.containerdSocket}`, "--timeout", "20s", "rmp", "-a", "-f"], {
      timeoutMs: 60_000,
    });
  }
  // 2. The components, the shims and whatever still runs in the pods' cgroups.
  for (const [name, pid] of Object.entries(p)) if (name !== "kubelet") killGroup(pid);
  for (const pid of shimPids(state.containerdSocket)) killGroup(pid);
  for (let i = 0; i < 50; i++) {
    const left = cgroupPids(state.cgroupRoot);
    if (!left.length) break;
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    spawnSync("sleep", ["0.1"]);
  }
  waitGone(Object.values(p), 10_000);
  if (state.controlPlane) {
    for (const pid of [state.controlPlane.pids.apiserver, state.controlPlane.pids.etcd]) killGroup(pid);
    waitGone([state.controlPlane.pids.apiserver, state.controlPlane.pids.etcd], 10_000);
  }
  // 3. iptables: kube-proxy's own cleanup, then every KUBE-/CNI-/JOBCHAIN- chain (the kubelet's KUBE-FIREWALL too).
  if (existsSync(bin("kube-proxy"))) run(bin("kube-proxy"), ["--cleanup", "--v=0"], { timeoutMs: 60_000 });
  problems.push(...removeIptables(state.before.iptablesTables));
  // 4. Network namespaces, veths, the bridge (with the node IP).
  for (const ns of netnsNames()) if (!state.before.netns.includes(ns) && ns.startsWith("cni-")) run("ip", ["netns", "delete", ns]);
  for (const port of bridgePorts(state.network.bridge)) deleteLink(port);
  deleteLink(state.network.bridge);
  // 5. Mounts (kubelet's bind mount of its root, the pods' volumes, containerd's overlays and shm), cgroups, paths.
  const dirs = [state.dir, path.dirname(state.containerdSocket)];
  const leftMounts = unmountUnder(dirs);
  problems.push(...leftMounts.map((m) => `still mounted: ${m}`));
  problems.push(...removeCgroups(state.cgroupRoot).map((c) => `cgroup left: ${c}`));
  problems.push(...removeCreatedPaths(state.before.paths).map((m) => `still mounted: ${m}`));
  // 6. Sysctls last: nothing running can set them again.
  problems.push(...restoreSysctls(state.before.sysctls).map((s) => `sysctl not restored: ${s}`));
  if (!leftMounts.length) {
    rmSync(path.dirname(state.containerdSocket), { recursive: true, force: true });
    if (!state.keepDir) rmSync(state.dir, { recursive: true, force: true });
  }
  const current = readNodeState();
  if (!current || current.startedAt === state.startedAt) {
    rmSync(STATE_FILE, { force: true });
    try {
      rmdirSync(NODE_STATE_DIR);
    } catch {
      /* not empty or gone */
    }
  }
  return problems;
}

export async function stopNodeByState(state: NodeState): Promise<string[]> {
  return stopNodeByStateSync(state);
}

function waitGone(pids: number[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
}

/** containerd-shim processes serving our containerd (their command line names its socket). */
function shimPids(socket: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (cmd.includes("containerd-shim") && cmd.includes(socket)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

// ---- start ---------------------------------------------------------------------------------------------------

/**
 * Cleans up after a node whose processes are gone (its starter was killed): no-op when there is none; throws
 * NodeBusyError when a node is running.
 */
export function cleanStaleNode(say: (line: string) => void = () => {}): void {
  const previous = readNodeState();
  if (!previous) return;
  if (nodeAlive(previous)) throw new NodeBusyError(previous);
  say(`cleaning up the stale node started ${previous.startedAt} (its processes are gone)`);
  const left = stopNodeByStateSync(previous);
  if (left.length) throw new NodeStartError(`could not clean up the stale node: ${left.join("; ")}`);
}

export interface StartNodeOptions {
  /** Working directory (certificates, configs, containerd and kubelet roots, logs). A temp dir when omitted. */
  dir?: string;
  keepDir?: boolean;
  /** Outlive this process (make cluster-up): no exit hook; stop with stopNodeByState(readNodeState()). */
  detached?: boolean;
  /** Image archives (names in imageArchivesDir(), without .tar) to import; default: every archive there. */
  images?: string[];
  /** How long to wait for the node to be Ready and its add-ons to answer, ms (default 180000). */
  startTimeoutMs?: number;
  /** Copy the components' logs to stderr (default: env JOBCHAIN_NODE_LOG=1). */
  log?: boolean;
  /** Called with a line per step (e.g. console.error) — for `make cluster-up`. */
  progress?: (line: string) => void;
}

export interface KubeNode {
  readonly controlPlane: ControlPlane;
  /** The admin kubeconfig (system:masters) — also the control plane's. */
  readonly kubeconfigPath: string;
  /** `{ KUBECONFIG }` for kubectl and clients. */
  readonly env: Record<string, string>;
  /** The kubectl built with the node components (same version as the cluster). */
  readonly kubectl: string;
  readonly binDir: string;
  readonly nodeName: string;
  readonly nodeIP: string;
  readonly dir: string;
  /** Milliseconds from the call until the node was Ready with its add-ons. */
  readonly startupMs: number;
  /** Imports an image archive into the node's containerd (k8s.io namespace). */
  importImage(archive: string): void;
  /** Last ~64 KiB of a component's log. */
  log(component: string): string;
  state(): NodeState;
  /** Stops everything and puts the host back; throws when something could not be put back. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a node (after cleaning the stale state of one whose processes are gone) and resolves once it is Ready. */
export async function startNode(opts: StartNodeOptions = {}): Promise<KubeNode> {
  const t0 = Date.now();
  const say = opts.progress ?? (() => {});
  const reason = nodeSkipReason();
  if (reason) throw new NodeStartError(`cannot start a node here: ${reason}`);
  const binDir = path.join(nodeComponentsDir(), "bin");
  const echo = opts.log ?? process.env.JOBCHAIN_NODE_LOG === "1";
  const detached = opts.detached ?? false;

  // One node per machine.
  cleanStaleNode(say);
  if (linkExists(NODE_NETWORK.bridge)) {
    throw new NodeStartError(
      `${NODE_NETWORK.bridge} exists but no node state is recorded in ${STATE_FILE}: ` +
        `delete it (ip link delete ${NODE_NETWORK.bridge}) after checking that nothing uses it`,
    );
  }

  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), "jobchain-node-"));
  const keepDir = opts.keepDir ?? opts.dir !== undefined;
  mkdirSync(dir, { recursive: true });
  // containerd's socket path must stay short (sun_path is 108 bytes): it lives in the state dir.
  const containerdSocket = path.join(NODE_STATE_DIR, "containerd", "containerd.sock");
  const state: NodeState = {
    version: 1,
    owner: { pid: process.pid, since: processStart(process.pid), detached },
    dir,
    keepDir,
    startedAt: new Date(t0).toISOString(),
    binDir,
    network: NODE_NETWORK,
    cgroupRoot: CGROUP_ROOT,
    before: {
      sysctls: readSysctls(),
      paths: existing(FIXED_PATHS),
      iptablesTables: iptablesTables(),
      netns: netnsNames(),
    },
    containerdSocket,
    pids: {},
  };
  try {
    writeState(state, true);
  } catch (e) {
    const other = readNodeState();
    if (other) throw new NodeBusyError(other);
    throw new NodeStartError(`cannot write ${STATE_FILE}`, { cause: e });
  }
  const procs: Record<string, Proc> = {};
  const logs: Record<string, string> = {};
  const record = (name: string, proc: Proc) => {
    procs[name] = proc;
    if (proc.child.pid) state.pids[name] = proc.child.pid;
    writeState(state);
  };
  const start = (name: string, args: string[]) => {
    const file = path.join(dir, "logs", `${name}.log`);
    logs[name] = file;
    const proc = startProcess(path.join(name === "containerd" ? "/usr/bin" : binDir, name), args, file, { echo });
    record(name, proc);
    return proc;
  };
  const failedProc = () => {
    for (const [name, p] of Object.entries(procs)) {
      if (p.exitInfo) return `${name} exited (${JSON.stringify(p.exitInfo)}):\n${tail(logs[name] ?? "", 3000)}`;
    }
    return undefined;
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 180_000);
  const waitFor = async (what: string, probe: () => boolean | Promise<boolean>) => {
    for (;;) {
      const dead = failedProc();
      if (dead) throw new NodeStartError(`${what}: ${dead}`);
      try {
        if (await probe()) return;
      } catch {
        /* retry */
      }
      if (Date.now() > deadline) throw new NodeStartError(`${what}: not ready in time (logs in ${path.join(dir, "logs")})`);
      await sleep(200);
    }
  };

  let cp: ControlPlane | undefined;
  try {
    if (!detached) {
      onProcessExit(() => {
        const s = readNodeState();
        if (s && s.startedAt === state.startedAt && s.owner.pid === process.pid) stopNodeByStateSync(s);
      });
    }
    for (const d of ["logs", "pki", "config", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "volumes"]) {
      mkdirSync(path.join(dir, d), { recursive: true });
    }
    const n = NODE_NETWORK;

    // The node IP: the pods' gateway on their bridge.
    must("ip", ["link", "add", n.bridge, "type", "bridge"]);
    must("ip", ["addr", "add", `${n.nodeIP}/${n.podPrefix}`, "dev", n.bridge]);
    must("ip", ["link", "set", n.bridge, "up"]);
    // The pods' cgroup root, in every hierarchy (the kubelet checks that it exists).
    for (const h of cgroupHierarchies()) mkdirSync(path.join(h, CGROUP_ROOT), { recursive: true });

    say("starting the control plane (etcd, kube-apiserver)");
    cp = await startControlPlane({
      dir: path.join(dir, "controlplane"),
      keepDir: true,
      detached: true, // stopped with the node (stopNodeByStateSync), not by the control plane's own hooks
      node: { address: n.nodeIP },
      log: echo,
    });
    state.controlPlane = { ...cp.state(), keepDir };
    state.kubeconfigPath = cp.adminKubeconfig;
    writeState(state);
    const pki = cp.pkiDir;
    const kubeconfig = (user: string, cert: { cert: string; key: string }) => {
      const file = path.join(dir, "config", `${user.replace(/[^a-z0-9-]/gi, "-")}.kubeconfig`);
      writeFileSync(file, certKubeconfigYaml(cp!.server, cp!.caCertPem, user, cert), { mode: 0o600 });
      return file;
    };
    const kubeletUser = `system:node:${NODE_NAME}`;
    const kubeletKc = kubeconfig(kubeletUser, issueCertificate(pki, "kubelet-client", { cn: kubeletUser, orgs: ["system:nodes"], usage: "client" }));
    const kubeletServing = issueCertificate(pki, "kubelet-serving", { cn: NODE_NAME, usage: "server", ips: [n.nodeIP], dns: [NODE_NAME] });
    const proxyKc = kubeconfig("system:kube-proxy", issueCertificate(pki, "kube-proxy", { cn: "system:kube-proxy", usage: "client" }));
    const cmKc = kubeconfig("system:kube-controller-manager",
      issueCertificate(pki, "kube-controller-manager", { cn: "system:kube-controller-manager", usage: "client" }));
    const schedKc = kubeconfig("system:kube-scheduler",
      issueCertificate(pki, "kube-scheduler", { cn: "system:kube-scheduler", usage: "client" }));
    const corednsUser = "jobchain:coredns";
    const corednsKc = kubeconfig(corednsUser, issueCertificate(pki, "coredns", { cn: corednsUser, usage: "client" }));

    // containerd.
    say("starting containerd and importing the images");
    const cdRoot = path.join(dir, "containerd");
    const cdConfig = path.join(dir, "config", "containerd.toml");
    mkdirSync(path.dirname(containerdSocket), { recursive: true });
    writeFileSync(
      cdConfig,
      containerdToml({
        root: path.join(cdRoot, "root"),
        state: path.join(NODE_STATE_DIR, "containerd", "state"),
        socket: containerdSocket,
        cniConfDir: path.join(dir, "cni", "net.d"),
        cniBinDir: CNI_BIN_DIR,
        runcRoot: path.join(NODE_STATE_DIR, "containerd", "runc"),
        optDir: path.join(cdRoot, "opt"),
      }),
    );
    writeFileSync(path.join(dir, "cni", "net.d", "10-jobchain.conflist"), cniConflist(path.join(dir, "cni", "ipam")));
    start("containerd", ["--config", cdConfig, "--log-level", "warn"]);
    const ctr = (args: string[], timeoutMs = 120_000) => must("ctr", ["--address", containerdSocket, "--namespace", "k8s.io", ...args], { timeoutMs });
    await waitFor("containerd", () => run("ctr", ["--address", containerdSocket, "version"], { timeoutMs: 5000 }).status === 0);
    const importImage = (archive: string) => void ctr(["images", "import", archive]);
    const archives = opts.images
      ? opts.images.map((i) => path.join(imageArchivesDir(), `${i}.tar`))
      : readdirSync(imageArchivesDir()).filter((f) => f.endsWith(".tar")).map((f) => path.join(imageArchivesDir(), f));
    for (const a of archives) importImage(a);

    // Pods may talk to pods and to the node, nothing else (the bridge has no masquerading; this rejects the rest).
    must("iptables-restore", ["--noflush"], {
      input: [
        "*filter",
        ":JOBCHAIN-EGRESS - [0:0]",
        `-I FORWARD 1 -s ${n.podCIDR} -j JOBCHAIN-EGRESS`,
        `-A JOBCHAIN-EGRESS -o ${n.bridge} -j RETURN`,
        `-A JOBCHAIN-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
        "-A JOBCHAIN-EGRESS -j REJECT",
        "COMMIT",
        "",
      ].join("\n"),
    });

    say("starting kube-controller-manager, kube-scheduler, kubelet, kube-proxy, CoreDNS");
    const [cmPort, schedPort, kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics, dnsReady] = (await freePorts(7)) as number[] as [
      number, number, number, number, number, number, number,
    ];
    // Both serve their health endpoints on loopback and authenticate their callers through the API server.
    const serving = (kc: string, port: number) => [`--kubeconfig=${kc}`, `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`, "--bind-address=127.0.0.1", `--secure-port=${port}`, "--leader-elect=false", "--v=1"];
    start("kube-controller-manager", [
      ...serving(cmKc, cmPort),
      `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
      `--root-ca-file=${cp.caCertPath}`,
      "--use-service-account-credentials=true",
      "--allocate-node-cidrs=false",
    ]);
    start("kube-scheduler", serving(schedKc, schedPort));
    const kubeletConfig = path.join(dir, "config", "kubelet.yaml");
    writeFileSync(
      kubeletConfig,
      kubeletConfigYaml({
        caFile: cp.caCertPath,
        tlsCert: kubeletServing.cert,
        tlsKey: kubeletServing.key,
        containerdSocket,
        podLogsDir: path.join(dir, "pod-logs"),
        port: kubeletPort,
        healthzPort: kubeletHealthz,
      }),
    );
    start("kubelet", [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${kubeletKc}`,
      `--root-dir=${path.join(dir, "kubelet")}`,
      `--node-ip=${n.nodeIP}`,
      `--hostname-override=${NODE_NAME}`,
      "--v=1",
    ]);
    const proxyConfig = path.join(dir, "config", "kube-proxy.yaml");
    writeFileSync(proxyConfig, kubeProxyConfigYaml(proxyKc, proxyHealthz, proxyMetrics));
    start("kube-proxy", [`--config=${proxyConfig}`, "--v=1"]);

    const kubectlBin = path.join(binDir, "kubectl");
    const kubectl = (args: string[], input?: string) =>
      must(kubectlBin, [`--kubeconfig=${cp!.adminKubeconfig}`, ...args], { ...(input !== undefined ? { input } : {}), timeoutMs: 60_000 });
    const volumes = [0, 1, 2, 3].map((i) => ({ name: `jobchain-local-${i}`, path: path.join(dir, "volumes", `pv-${i}`) }));
    for (const v of volumes) {
      mkdirSync(v.path, { recursive: true });
      chmodSync(v.path, 0o1777); // pods run as non-root users; a local volume has no fsGroup handling
    }
    kubectl(["apply", "-f", "-"], clusterAddonsYaml(corednsUser, volumes));
    const corefilePath = path.join(dir, "config", "Corefile");
    writeFileSync(corefilePath, corefile(corednsKc, dnsReady));
    start("coredns", ["-conf", corefilePath]);

    say("waiting for the node to be Ready");
    await waitFor("node Ready", () =>
      /True/.test(kubectl(["get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])),
    );
    await waitFor("default service account", () => kubectl(["get", "serviceaccount", "default", "-n", "default", "--ignore-not-found", "-o", "name"]).trim() !== "");
    await waitFor("CoreDNS", () => dnsAnswers(`kubernetes.default.svc.${n.clusterDomain}`, n.nodeIP));

    const startupMs = Date.now() - t0;
    let stopped: Promise<void> | undefined;
    const node: KubeNode = {
      controlPlane: cp,
      kubeconfigPath: cp.adminKubeconfig,
      env: { KUBECONFIG: cp.adminKubeconfig },
      kubectl: kubectlBin,
      binDir,
      nodeName: NODE_NAME,
      nodeIP: n.nodeIP,
      dir,
      startupMs,
      importImage,
      log: (c) => (c === "etcd" || c === "apiserver" ? cp!.log(c) : tail(logs[c] ?? "")),
      state: () => ({ ...state }),
      stop: () =>
        (stopped ??= (async () => {
          const left = stopNodeByStateSync(readNodeState() ?? state);
          if (left.length) throw new Error(`the node did not put everything back: ${left.join("; ")}`);
        })()),
      [Symbol.asyncDispose]: () => node.stop(),
    };
    return node;
  } catch (e) {
    const left = stopNodeByStateSync(readNodeState() ?? state);
    const msg = e instanceof Error ? e.message : String(e);
    throw new NodeStartError(left.length ? `${msg}\n(and cleaning up left: ${left.join("; ")})` : msg, { cause: e });
  }
}

/**
 * Imports an image archive (a name in imageArchivesDir() or a path) into a running node's containerd; false when no
 * node runs.
 */
export function importImageIntoNode(archive: string): boolean {
  const state = readNodeState();
  if (!state || !nodeAlive(state)) return false;
  const file = archive.includes("/") ? archive : path.join(imageArchivesDir(), `${archive}.tar`);
  must("ctr", ["--address", state.containerdSocket, "--namespace", "k8s.io", "images", "import", file], { timeoutMs: 300_000 });
  return true;
}

/** Whether `nameserver` answers an A query for `name` with at least one address (a minimal DNS client). */
export function dnsAnswers(name: string, nameserver: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket("udp4");
    const id = Math.floor(Math.random() * 65535);
    const q = Buffer.concat([
      Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("error", () => done(false));
    sock.on("message", (msg) => done(msg.readUInt16BE(0) === id && (msg[3]! & 0x0f) === 0 && msg.readUInt16BE(6) > 0));
    sock.send(q, 53, nameserver);
  });
}

export { controlPlaneVersions };
