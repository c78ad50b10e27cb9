// Tests of the control-plane harness itself: start/stop leave nothing behind, the kubeconfigs name the right
// users, and `cluster.ts up|down` (what `make cluster-up`/`cluster-down` run) works from a separate process.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { AuthenticationV1Api, KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  ADMIN_USER,
  RESTRICTED_GROUP,
  RESTRICTED_USER,
  alive,
  findControlPlaneBinaries,
  startControlPlane,
  type ControlPlaneState,
} from "./controlplane.ts";
import { controlPlaneSuiteSkip } from "./controlplane-vitest.ts";
import { findNatsServer } from "./nats.ts";
import YAML from "yaml";
import { createKubeClient, loadKubeConfig, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { until } from "../helpers/until.ts";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const skip = controlPlaneSuiteSkip("control-plane harness");


async function whoami(kubeconfig: string, context?: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  if (context) kc.setCurrentContext(context);
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  return review.status?.userInfo;
}

describe.skipIf(skip)("control-plane harness", () => {
  it("starts kube-apiserver + etcd, authenticates both users, and stop() removes processes and temp dir", async () => {
    const cp = await startControlPlane();
    try {
      expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect((await whoami(cp.adminKubeconfig))?.groups).toContain("system:masters");
      expect((await whoami(cp.adminKubeconfig))?.username).toBe(ADMIN_USER);
      const r = await whoami(cp.restrictedKubeconfig);
      expect(r?.username).toBe(RESTRICTED_USER);
      expect(r?.groups).toEqual([RESTRICTED_GROUP, "system:authenticated"]);
      expect((await whoami(cp.kubeconfigPath, "jobchain-restricted"))?.username).toBe(RESTRICTED_USER);
      expect(cp.env.KUBECONFIG).toBe(cp.adminKubeconfig);
      expect(alive(cp.pids.apiserver) && alive(cp.pids.etcd)).toBe(true);
    } finally {
      await cp.stop();
    }
    expect(alive(cp.pids.apiserver)).toBe(false);
    expect(alive(cp.pids.etcd)).toBe(false);
    expect(existsSync(cp.dir)).toBe(false);
    await cp.stop(); // idempotent
  });

  it("cluster.ts up leaves a cluster running JobChain for other processes and prints the kubeconfig last; down removes it", async () => {
    const bins = findControlPlaneBinaries();
    if (!bins.available) throw new Error(bins.reason);
    const cache = mkdtempSync(path.join(os.tmpdir(), "jobchain-cluster-test-"));
    const env = { ...process.env, JOBCHAIN_CACHE_DIR: cache, JOBCHAIN_CONTROLPLANE_BIN: bins.binDir, JOBCHAIN_NATS_SERVER: findNatsServer() };
    const cli = path.join(here, "cluster.ts");
    try {
      const up = await run(process.execPath, [cli, "up"], { env });
      const kubeconfig = up.stdout.trim().split("\n").at(-1)!;
      expect(kubeconfig).toBe(path.join(cache, "cluster", "run", "kubeconfig"));
      const state = JSON.parse(readFileSync(path.join(cache, "cluster", "state.json"), "utf8")) as ControlPlaneState;
      // The `up` process has exited; the servers keep running.
      expect((await whoami(kubeconfig))?.username).toBe(ADMIN_USER);
      // JobChain works on it as the README says: the example JobGraph and a JobTask, through the API.
      const kube = createKubeClient(loadKubeConfig({ kubeconfig }));
      await kube.create(JOBGRAPHS, YAML.parse(readFileSync(path.join(here, "../../examples/k8s/echo-graph.yaml"), "utf8")));
      const task = await kube.create<KubeObject>(JOBTASKS, YAML.parse(readFileSync(path.join(here, "../../examples/k8s/echo-task.yaml"), "utf8")));
      let done: (KubeObject & { status?: { phase?: string; result?: unknown } }) | undefined;
      await until(async () => {
        done = await kube.get(JOBTASKS, "default", task.metadata.name);
        return done?.status?.phase === "Succeeded";
      }, 120_000, "the example JobTask Succeeded");
      expect(done!.status!.result).toEqual({ name: "world", signed: true });
      const services = JSON.parse(readFileSync(path.join(cache, "cluster", "jobchain", "services.json"), "utf8")) as { pids: Record<string, number> };
      // A second `up` reuses the running one.
      const again = await run(process.execPath, [cli, "up"], { env });
      expect(again.stdout).toContain("already running");
      expect(again.stdout.trim().split("\n").at(-1)).toBe(kubeconfig);

      await run(process.execPath, [cli, "down"], { env });
      expect(alive(state.pids.apiserver) || alive(state.pids.etcd)).toBe(false);
      expect(Object.values(services.pids).filter(alive)).toEqual([]);
      expect(existsSync(path.join(cache, "cluster", "run"))).toBe(false);
      await expect(run(process.execPath, [cli, "status"], { env })).rejects.toThrow();
    } finally {
      await run(process.execPath, [cli, "down"], { env }).catch(() => {});
      rmSync(cache, { recursive: true, force: true });
    }
  }, 240_000);
});
