// The committed CRDs and reference are exactly what `make crds` produces from operator/api/schema.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GENERATE_COMMAND, generatedFiles } from "../../operator/api/generate.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function committed(file: string): string {
  try {
    return readFileSync(path.join(root, file), "utf8");
  } catch {
    return "";
  }
}

describe("generated CRD files", () => {
  for (const f of generatedFiles()) {
    it(`${f.path} is up to date`, () => {
      const same = committed(f.path) === f.text;
      expect(same, `${f.path} differs from what the schemas in operator/api produce: run \`${GENERATE_COMMAND}\` and commit the result`).toBe(true);
    });
  }

  it("generates the same text twice (deterministic output)", () => {
    expect(generatedFiles()).toEqual(generatedFiles());
  });
});
