// vitest glue of the end-to-end suite: which cluster it runs on (JOBCHAIN_E2E_CLUSTER: `node`, the default, or
// `kind`), the images it loads, and a loud skip with the reason where that cluster cannot run here.
import { existsSync } from "node:fs";
import path from "node:path";
import { it } from "vitest";
import type { E2ECluster } from "./e2e-cluster.ts";
import { helmBinary } from "./helm.ts";
import { imageArchivesDir, nodeAlive, nodeSkipReason, readNodeState } from "./node.ts";
import { startNodeE2ECluster } from "./node-e2e.ts";
import { kindSkipReason, startKindE2ECluster } from "./kind.ts";

/** Image archives (imageArchivesDir()) the suite loads: `make e2e-images` builds them. */
export const E2E_IMAGES = ["jobchain", "jobchain-next", "nats-server", "pipeline", "e2e-jobs-1", "e2e-jobs-2"] as const;

export const e2eFlavor = (): "node" | "kind" => (process.env.JOBCHAIN_E2E_CLUSTER === "kind" ? "kind" : "node");

/** Undefined when the suite can run; otherwise the reason, printed and registered as one skipped test. */
export function e2eSuiteSkip(): string | undefined {
  const bin = helmBinary();
  let reason = bin.available ? undefined : bin.reason;
  if (reason === undefined && e2eFlavor() === "kind") reason = kindSkipReason();
  if (reason === undefined && e2eFlavor() === "node") {
    reason = nodeSkipReason({ images: ["nats-server", "jobchain"] });
    const running = readNodeState();
    if (reason === undefined && running && nodeAlive(running)) {
      reason = `a node is already running on this machine (started ${running.startedAt}; \`make cluster-down\` stops it)`;
    }
  }
  const missing = E2E_IMAGES.filter((i) => !existsSync(path.join(imageArchivesDir(), `${i}.tar`)));
  if (reason === undefined && missing.length) reason = `image archives missing: ${missing.join(", ")} (\`make e2e-images\` builds them)`;
  if (reason === undefined) return undefined;
  console.warn(`SKIPPED end-to-end suite (${e2eFlavor()}): ${reason}`);
  it(`end to end on ${e2eFlavor()} (needs a cluster with real pods)`, (ctx) => {
    ctx.skip(reason);
  });
  return reason;
}

export async function startE2ECluster(progress?: (line: string) => void): Promise<E2ECluster> {
  if (e2eFlavor() === "kind") {
    return startKindE2ECluster(progress);
  }
  return startNodeE2ECluster(progress);
}
