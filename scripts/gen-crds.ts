// Writes the CRDs (crds/*.yaml) and docs/crd-reference.md from the zod schemas of operator/api (`make crds`), and
// the Helm chart's copies of the CRDs and of the operator's RBAC rules (scripts/chart-files.ts).
// `--check` writes nothing and exits 1, naming the files, when the committed files differ from what it would write.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GENERATE_COMMAND, generatedFiles } from "../operator/api/generate.ts";
import { chartFiles } from "./chart-files.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");

function current(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

const stale: string[] = [];
const generated = generatedFiles();
for (const f of [...generated, ...chartFiles(generated, root)]) {
  const file = path.join(root, f.path);
  if (current(file) === f.text) continue;
  if (check) {
    stale.push(f.path);
    continue;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, f.text);
  console.log(`wrote ${f.path}`);
}
if (stale.length > 0) {
  console.error(`out of date: ${stale.join(", ")}; run \`${GENERATE_COMMAND}\` and commit the result`);
  process.exit(1);
}
