// The files of charts/jobchain that `make crds` copies from elsewhere in the repository, byte for byte: the CRDs
// (from the generated crds/*.yaml) and the operator's RBAC rules (from config/rbac/role.yaml). Pure apart from
// reading role.yaml: scripts/gen-crds.ts writes or checks them, test/chart compares them with the committed files.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { GeneratedFile } from "../operator/api/generate.ts";

export const CHART_DIR = "charts/jobchain";
export const RBAC_SOURCE = "config/rbac/role.yaml";

/** The chart's copies of `generated`'s CRDs and of config/rbac/role.yaml (paths relative to `root`). */
export function chartFiles(generated: readonly GeneratedFile[], root: string): GeneratedFile[] {
  const crds = generated
    .filter((f) => f.path.startsWith("crds/"))
    .map((f) => ({ path: `${CHART_DIR}/${f.path}`, text: f.text }));
  const rbac = { path: `${CHART_DIR}/files/rbac.yaml`, text: readFileSync(path.join(root, RBAC_SOURCE), "utf8") };
  return [...crds, rbac];
}
