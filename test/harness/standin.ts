// The Deployment stand-in (deployments.ts) as a process of its own, for `make cluster-up` on a machine without a
// real node: runner "pods" run as local processes of bin/jobchain.js with the built-in jobs and the examples' jobs.
//
//   node test/harness/standin.ts KUBECONFIG
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startDeploymentRunner } from "./deployments.ts";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(repo, "bin/jobchain.js");
const exampleJobs = path.join(repo, "examples/pipeline/jobs");
const kubeconfig = process.argv[2];
if (!kubeconfig) {
  console.error("usage: node test/harness/standin.ts KUBECONFIG");
  process.exit(2);
}
const runner = await startDeploymentRunner({
  kubeconfig,
  // "Pods" share this host's ports: each runner takes a free metrics port instead of its pod's own.
  commandMap: (argv) => [
    process.execPath,
    bin,
    ...argv.slice(1).map((a, i, all) => (all[i - 1] === "--metrics-port" ? "0" : a)),
    ...(argv[1] === "runner" ? ["--jobs", exampleJobs] : []),
  ],
  log: true,
});
console.error("deployment stand-in: running runner pods as local processes");
const stop = async () => {
  await runner.stop();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
