// vitest glue for suites that need the local control plane (controlplane.ts): reports a skip loudly, with its
// reason, instead of passing silently when kube-apiserver/etcd cannot run here (e.g. no Go to build them).
//
//   const skip = controlPlaneSuiteSkip("operator integration");
//   describe.skipIf(skip)("operator integration", () => { beforeAll(async () => { cp = await startControlPlane(); }); … });
import { it } from "vitest";
import { controlPlaneSkipReason } from "./controlplane.ts";

/**
 * Undefined when a control plane can be started. Otherwise returns the reason, after printing it to stderr and
 * registering one skipped test that carries it as its note (shown by `--reporter=verbose` and in JSON/JUnit).
 * Call it at the top level of a test file.
 */
export function controlPlaneSuiteSkip(suite: string): string | undefined {
  const reason = controlPlaneSkipReason();
  if (reason === undefined) return undefined;
  console.warn(`SKIPPED ${suite}: ${reason}`);
  it(`${suite} (needs the local control plane)`, (ctx) => {
    ctx.skip(reason);
  });
  return reason;
}
