// A local control plane (kube-apiserver + etcd, see controlplane.ts) that outlives the command, for trying things
// by hand with kubectl. Used by `make cluster-up` / `make cluster-down`.
//
//   node test/harness/cluster.ts up       # start (or reuse a running one); the kubeconfig path is the LAST line
//   node test/harness/cluster.ts status   # prints the server and kubeconfig, exit 1 when not running
//   node test/harness/cluster.ts down     # stop and remove everything
//
// State lives in $JOBCHAIN_CACHE_DIR/cluster/: `state.json`, and `run/` (certificates, tokens, etcd data, logs,
// kubeconfigs). The kubeconfig ($JOBCHAIN_CACHE_DIR/cluster/run/kubeconfig) has two contexts: `jobchain-admin`
// (current; system:masters) and `jobchain-restricted` (no RBAC grants).
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

const root = path.join(cacheDir(), "cluster");
const stateFile = path.join(root, "state.json");
const runDir = path.join(root, "run");

function readState(): ControlPlaneState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8")) as ControlPlaneState;
  } catch {
    return undefined;
  }
}

const servicesDir = path.join(root, "jobchain");

async function down(quiet = false): Promise<void> {
  const services = readServices(servicesDir);
  if (services) {
    await stopServices(services);
    if (!quiet) console.log("stopped the operator, the runner pods and nats-server");
  }
  rmSync(servicesDir, { recursive: true, force: true });
  const state = readState();
  if (state) {
    await stopControlPlaneByState({ ...state, keepDir: false });
    if (!quiet) console.log(`stopped the control plane at ${state.server}`);
  } else if (!quiet) {
    console.log("no control plane is running");
  }
  rmSync(runDir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

async function up(): Promise<void> {
  const state = readState();
  if (state && controlPlaneAlive(state) && (await controlPlaneReady(state))) {
    console.log(`control plane already running at ${state.server} (Kubernetes ${state.versions.kubernetes})`);
    console.log(state.kubeconfigPath);
    return;
  }
  await down(true); // a stale state or half-dead processes
  mkdirSync(root, { recursive: true });
  const cp = await startControlPlane({ dir: runDir, keepDir: true, detached: true });
  writeFileSync(stateFile, `${JSON.stringify(cp.state(), null, 2)}\n`);
  console.log(
    `control plane ready at ${cp.server} in ${(cp.startupMs / 1000).toFixed(1)} s ` +
      `(kube-apiserver ${cp.versions.kubernetes}, etcd ${cp.versions.etcd}; logs in ${runDir}; stop with \`make cluster-down\`)`,
  );
  console.log("no real node here: runner pods run as local processes (the Deployment stand-in, test/harness/deployments.ts)");
  const services = await startServices({ dir: servicesDir, kubeconfig: cp.kubeconfigPath, standIn: true });
  console.log(`JobChain: CRDs installed, operator running, nats-server at ${services.natsUrl} (logs in ${servicesDir})`);
  console.log("  try: kubectl apply -f examples/k8s/echo-graph.yaml && kubectl create -f examples/k8s/echo-task.yaml && kubectl get jobtasks -w");
  console.log(`  export KUBECONFIG=${cp.kubeconfigPath}   # contexts: jobchain-admin (current), jobchain-restricted`);
  console.log(cp.kubeconfigPath);
}

async function status(): Promise<void> {
  const state = readState();
  if (state && controlPlaneAlive(state) && (await controlPlaneReady(state))) {
    console.log(`running at ${state.server} since ${state.startedAt} (Kubernetes ${state.versions.kubernetes})`);
    console.log(state.kubeconfigPath);
    return;
  }
  console.log(existsSync(stateFile) ? "not running (stale state; `make cluster-down` cleans up)" : "not running");
  process.exitCode = 1;
}

const cmd = process.argv[2];
try {
  if (cmd === "up") await up();
  else if (cmd === "down") await down();
  else if (cmd === "status") await status();
  else {
    console.error("usage: node test/harness/cluster.ts up|down|status");
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`cluster ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
