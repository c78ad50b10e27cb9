// The package as an embedded user gets it: `npm pack`, installed into an empty project with npm's defaults (the
// optional peer dependencies — the Kubernetes client, the OpenTelemetry SDK — are not installed), then a graph
// run through the installed package, from TypeScript and with `npx jobchain run`.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "./helpers/cli.ts";
import { tempDir } from "./helpers/tmp.ts";

const run = promisify(execFile);
const project = tempDir({
  "package.json": '{"name":"embedded-user","version":"1.0.0","type":"module","private":true}\n',
  "pipeline/jobs.yaml": "shout: {type: Shout}\nmerge: {type: Merge}\n",
  "pipeline/graphs.yaml": "main:\n  shout: {next: [merge]}\n  merge: {}\n",
  "pipeline/jobs/shout.mjs": 'import { Job } from "jobchain";\nexport class Shout extends Job { run(task) { return { text: String(task.text).toUpperCase() }; } }\n',
  "main.mjs": `
import { JobChain, loadChain } from "jobchain";
const chain = await loadChain("./pipeline");
if (!(chain instanceof JobChain)) throw new Error("not a JobChain");
console.log(JSON.stringify(await chain.submitTask({ text: "hi" })));
await chain.markInputCompleted();
`,
});
afterAll(() => project.cleanup());

describe("the packed package", { timeout: 300_000 }, () => {
  it("installs without the operator's and the exporters' packages and runs a graph", async () => {
    // --ignore-scripts: `make test` has built dist/ already, and rebuilding it here would race the other suites.
    const npm = { cwd: project.dir, env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false" }, maxBuffer: 1 << 24 };
    const packed = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", project.dir, "--loglevel=error", REPO], { ...npm, cwd: REPO });
    const tarball = path.join(project.dir, packed.stdout.trim().split("\n").pop()!);
    await run("npm", ["install", "--prefer-offline", "--loglevel=error", tarball], npm);
    const modules = path.join(project.dir, "node_modules");
    expect(existsSync(path.join(modules, "jobchain/dist/index.js"))).toBe(true);
    expect(existsSync(path.join(modules, "@kubernetes/client-node"))).toBe(false);
    expect(readdirSync(path.join(modules, "@opentelemetry"))).toEqual(["api"]);

    const fromCode = await run(process.execPath, ["main.mjs"], npm);
    expect(JSON.parse(fromCode.stdout)).toEqual({ text: "HI" });

    const fromCli = await run("npx", ["--no-install", "jobchain", "run", "pipeline", "--input", '{"id": "t", "text": "yo"}'], npm);
    expect(JSON.parse(fromCli.stdout)).toEqual({ id: "t", graph: "main", status: "succeeded", task: { id: "t", text: "yo" }, result: { text: "YO" } });

    // Tracing needs the SDK, which this install lacks: a message saying what to install, exit 2.
    project.write("ot.yaml", "exporter: file\n");
    const traced = await run("npx", ["--no-install", "jobchain", "run", "pipeline", "--input", "{}"], { ...npm, env: { ...npm.env, JOBCHAIN_OT_CONFIG: "ot.yaml" } }).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(traced.code).toBe(2);
    expect(traced.stderr).toContain("jobchain: tracing (JOBCHAIN_OT_CONFIG) needs @opentelemetry/sdk-trace-base, @opentelemetry/resources, @opentelemetry/core: npm install @opentelemetry/sdk-trace-base @opentelemetry/resources @opentelemetry/core");
  });
});
