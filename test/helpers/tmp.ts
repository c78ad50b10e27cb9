import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** A temporary directory with the given files (paths relative to it); removed by `cleanup()`. */
export function tempDir(files: Record<string, string> = {}): { dir: string; cleanup: () => void; write: (rel: string, text: string) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-test-"));
  const write = (rel: string, text: string): string => {
    const full = path.join(dir, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, text);
    return full;
  };
  for (const [rel, text] of Object.entries(files)) write(rel, text);
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
