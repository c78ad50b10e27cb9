#!/usr/bin/env node
// The CLI ships compiled (dist/) so it also runs from node_modules, where Node will not strip TypeScript types.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`jobchain: Node.js 22.18 or newer is required (this is ${process.version}); run 'make node' or install Node 24\n`);
  process.exit(2);
}
const { main } = await import("../dist/cli/main.js");

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`jobchain: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 70;
  },
);
