#!/usr/bin/env node
// The CLI ships compiled (dist/) so it also runs from node_modules, where Node will not strip TypeScript types.
import { main } from "../dist/cli/main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`jobchain: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 70;
  },
);
