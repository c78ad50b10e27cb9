// A local Kubernetes that outlives the command, for trying things by hand with kubectl. Used by `make cluster-up` /
// `make cluster-down`. Where this machine can run containers (root, overlayfs, cgroups; see node.ts) it is a real
// single node — kubelet, containerd, kube-proxy, controller manager, scheduler, CoreDNS, the project's images —
// otherwise the control plane alone (kube-apiserver + etcd, see controlplane.ts); `up` says which.
//
//   node test/harness/cluster.ts up                 # start (or reuse a running one); the kubeconfig path is the LAST line
//   node test/harness/cluster.ts status             # prints the server and kubeconfig, exit 1 when not running
//   node test/harness/cluster.ts down               # stop and remove everything (the host is put back)
//   node test/harness/cluster.ts load-image NAME    # import an image archive (make image) into the running node
//
// State lives in $JOBCHAIN_CACHE_DIR/cluster/: `state.json` (the control plane's), and `run/` (certificates, tokens,
// etcd data, logs, kubeconfigs; with a node also containerd's and the kubelet's roots). A node's own state is in
// /run/jobchain-node/state.json (node.ts). The kubeconfig ($JOBCHAIN_CACHE_DIR/cluster/run/kubeconfig, or
// .../run/controlplane/kubeconfig with a node) has two contexts: `jobchain-admin` (current; system:masters) and
// `jobchain-restricted` (no RBAC grants).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  cacheDir,
  controlPlaneAlive,
  controlPlaneReady,
  startControlPlane,
  stopControlPlaneByState,
  type ControlPlaneState,
} from "./controlplane.ts";
import { readServices, startServices, stopServices } from "./services.ts";
import { helm } from "./helm.ts";
import { kubectlWith } from "./node-e2e.ts";
import {
  IMAGES,
  importImageIntoNode,
  nodeComponentsDir,
  nodeAlive,
  nodeSkipReason,
  readNodeState,
  startNode,
  stopNodeByState,
  type NodeState,
} from "./node.ts";

const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
const root = path.join(cacheDir(), "cluster");
const stateFile = path.join(root, "state.json");
const runDir = path.join(root, "run");
/** JobChain's own processes: nats-server, the operator, and without a node the Deployment stand-in. */
const servicesDir = path.join(root, "jobchain");

function readState(): ControlPlaneState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8")) as ControlPlaneState;
  } catch {
    return undefined;
  }
}

/** The node this cluster started (the machine's node may belong to a test run, or to another cache dir's cluster). */
function ownNode(): NodeState | undefined {
  const node = readNodeState();
  return node?.owner.detached && node.dir === runDir ? node : undefined;
}

async function down(quiet = false): Promise<void> {
  const services = readServices(servicesDir);
  if (services) {
    await stopServices(services);
    if (!quiet) console.log("stopped the operator, nats-server and (without a node) the runner pods");
  }
  rmSync(servicesDir, { recursive: true, force: true });
  const node = ownNode();
  if (node) {
    const left = await stopNodeByState(node);
    if (!quiet) console.log(`stopped the node ${node.network.nodeIP} started ${node.startedAt}`);
    if (left.length) console.error(`cluster down: not everything was put back: ${left.join("; ")}`);
  }
  const state = readState();
  if (state) {
    await stopControlPlaneByState({ ...state, keepDir: false });
    if (!quiet) console.log(`stopped the control plane at ${state.server}`);
  } else if (!quiet && !node) {
    console.log("no control plane is running");
  }
  rmSync(runDir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

/** The real node (node.ts) with its control plane; returns the control plane's state for state.json. */
async function startNodeCluster(): Promise<ControlPlaneState & { nodeIP?: string }> {
  const node = await startNode({ dir: runDir, keepDir: true, detached: true, progress: (l) => console.error(`  ${l}`) });
  const cp = node.controlPlane;
  console.log(
    `node ${node.nodeName} (${node.nodeIP}) Ready in ${(node.startupMs / 1000).toFixed(1)} s: kubelet, containerd, kube-proxy, ` +
      `controller manager, scheduler, CoreDNS (Kubernetes ${cp.versions.kubernetes}; logs in ${path.join(runDir, "logs")}; ` +
      "stop with `make cluster-down`)",
  );
  console.log(`  kubectl: ${node.kubectl}   images: imagePullPolicy IfNotPresent (make image loads the project's)`);
  return { ...cp.state(), nodeIP: node.nodeIP };
}

/** The control plane alone (no node can run here). */
async function startControlPlaneOnly(): Promise<ControlPlaneState> {
  const cp = await startControlPlane({ dir: runDir, keepDir: true, detached: true });
  console.log(
    `control plane ready at ${cp.server} in ${(cp.startupMs / 1000).toFixed(1)} s ` +
      `(kube-apiserver ${cp.versions.kubernetes}, etcd ${cp.versions.etcd}; logs in ${runDir}; stop with \`make cluster-down\`)`,
  );
  return cp.state();
}

async function up(): Promise<void> {
  const state = readState();
  const node = ownNode();
  const nodeOk = state?.node ? node !== undefined && nodeAlive(node) : true;
  if (state && controlPlaneAlive(state) && (await controlPlaneReady(state)) && nodeOk) {
    console.log(`${state.node ? "node" : "control plane"} already running at ${state.server} (Kubernetes ${state.versions.kubernetes})`);
    console.log(state.kubeconfigPath);
    return;
  }
  await down(true); // a stale state or half-dead processes
  mkdirSync(root, { recursive: true });
  let why = nodeSkipReason({ images: ["base", "nats-server", "jobchain"] });
  const other = readNodeState();
  if (why === undefined && other && nodeAlive(other)) {
    why = `this machine's one node is in use (started ${other.startedAt} by pid ${other.owner.pid}, working dir ${other.dir})`;
  }
  let cp: ControlPlaneState & { nodeIP?: string };
  if (why === undefined) {
    console.log("this machine can run containers: starting a real node");
    cp = await startNodeCluster();
  } else {
    console.log(`no real node here (${why}): starting the control plane only; runner pods run as local processes (the Deployment stand-in)`);
    cp = await startControlPlaneOnly();
  }
  writeFileSync(stateFile, `${JSON.stringify(cp, null, 2)}\n`);
  if (cp.nodeIP !== undefined) {
    await installChart(cp.kubeconfigPath);
  } else {
    // Without a node: nats-server, the operator and the stand-in's runner "pods" as local processes.
    const services = await startServices({ dir: servicesDir, kubeconfig: cp.kubeconfigPath, standIn: true });
    console.log(`JobChain: CRDs installed, operator running, nats-server at ${services.natsUrl} (logs in ${servicesDir})`);
  }
  console.log("  try: kubectl apply -f examples/k8s/echo-graph.yaml && kubectl create -f examples/k8s/echo-task.yaml && kubectl get jobtasks -w");
  console.log(`  export KUBECONFIG=${cp.kubeconfigPath}   # contexts: jobchain-admin (current), jobchain-restricted`);
  console.log(cp.kubeconfigPath);
}

/** JobChain on the node exactly as a user installs it: the chart, with the locally built images. */
async function installChart(kubeconfig: string): Promise<void> {
  const env = { KUBECONFIG: kubeconfig };
  const t0 = Date.now();
  await helm(
    [
      "upgrade", "--install", "jobchain", path.join(REPO_ROOT, "charts/jobchain"), "--namespace", "jobchain-system", "--create-namespace",
      "--wait", "--timeout", "5m", "--set", `image.tag=${IMAGES.project.split(":").pop()}`, "--set", "nats.install.storage.storageClassName=jobchain-local",
    ],
    { env, timeoutMs: 360_000 },
  );
  const kubectl = path.join(nodeComponentsDir(), "bin", "kubectl");
  const ip = kubectlWith(kubectl, env, ["get", "service", "-n", "jobchain-system", "jobchain-nats", "-o", "jsonpath={.spec.clusterIP}"]).trim();
  console.log(`JobChain installed with helm in ${((Date.now() - t0) / 1000).toFixed(1)} s: release jobchain in namespace jobchain-system ` +
    `(helm install jobchain charts/jobchain --set image.tag=dev); NATS at nats://${ip}:4222 from this machine`);
  console.log(`  submit from here: node bin/jobchain.js submit --graph default_echo --input '{"name":"you"}' --nats nats://${ip}:4222`);
}

async function status(): Promise<void> {
  const state = readState();
  if (state && controlPlaneAlive(state) && (await controlPlaneReady(state))) {
    const node = ownNode();
    console.log(
      `running at ${state.server} since ${state.startedAt} (Kubernetes ${state.versions.kubernetes}` +
        `${node && nodeAlive(node) ? `, node ${node.network.nodeIP}` : ", control plane only"})`,
    );
    console.log(state.kubeconfigPath);
    return;
  }
  console.log(existsSync(stateFile) ? "not running (stale state; `make cluster-down` cleans up)" : "not running");
  process.exitCode = 1;
}

function loadImage(name: string | undefined): void {
  if (!name) throw new Error("usage: node test/harness/cluster.ts load-image NAME (an archive of scripts/images/build.sh)");
  if (importImageIntoNode(name)) console.log(`loaded ${name} into the node's containerd (namespace k8s.io)`);
  else console.log(`no node is running: ${name} is loaded when the next node starts`);
}

const cmd = process.argv[2];
try {
  if (cmd === "up") await up();
  else if (cmd === "down") await down();
  else if (cmd === "status") await status();
  else if (cmd === "load-image") loadImage(process.argv[3]);
  else {
    console.error("usage: node test/harness/cluster.ts up|down|status|load-image NAME");
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`cluster ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
