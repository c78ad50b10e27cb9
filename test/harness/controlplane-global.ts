// A vitest globalSetup module that starts ONE control plane (controlplane.ts) for a whole run and shares it with
// every test file. Not wired into vitest.config.ts: the suites in this repository start their own control plane
// in `beforeAll` (isolated, and ~3 s each). To share one instead, add this file to `test.globalSetup` of a vitest
// project, then in a test file:
//
//   import { inject } from "vitest";
//   const shared = inject("controlPlane");
//   describe.skipIf(shared.skipReason)(`… ${shared.skipReason ?? ""}`, () => {
//     kc.loadFromFile(shared.adminKubeconfig!);
//   });
//
// It also sets JOBCHAIN_TEST_KUBECONFIG (admin kubeconfig) in the environment the test workers inherit.
// Tests that share a control plane must not step on each other: use their own namespaces or names.
import type { TestProject } from "vitest/node";
import { controlPlaneSkipReason, startControlPlane, type ControlPlane } from "./controlplane.ts";

/** What test files get from `inject("controlPlane")`. */
export interface SharedControlPlane {
  /** Set when no control plane could be started here (e.g. no Go to build it); the rest is then absent. */
  skipReason?: string;
  server?: string;
  kubeconfigPath?: string;
  adminKubeconfig?: string;
  restrictedKubeconfig?: string;
  kubernetesVersion?: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    controlPlane: SharedControlPlane;
  }
}

let cp: ControlPlane | undefined;

export async function setup(project: TestProject): Promise<void> {
  const skipReason = controlPlaneSkipReason();
  if (skipReason) {
    project.provide("controlPlane", { skipReason });
    return;
  }
  cp = await startControlPlane();
  process.env.JOBCHAIN_TEST_KUBECONFIG = cp.adminKubeconfig;
  project.provide("controlPlane", {
    server: cp.server,
    kubeconfigPath: cp.kubeconfigPath,
    adminKubeconfig: cp.adminKubeconfig,
    restrictedKubeconfig: cp.restrictedKubeconfig,
    kubernetesVersion: cp.versions.kubernetes,
  });
}

export async function teardown(): Promise<void> {
  await cp?.stop();
  cp = undefined;
}
