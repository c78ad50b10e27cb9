// `make bench`: runs every suite in bench/suites/ (or those named on the command line), prints one table and
// writes the rows as JSON to bench/results/. Figures are measured here and now, side by side with baselines.
// Each suite runs in a process of its own, so no suite measures with the heap or the handles another one left.
import { spawn } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchRow, BenchSuite } from "./types.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

// In a suite's own process: run it and hand its rows to the parent on stdout.
const only = process.env.JOBCHAIN_BENCH_SUITE;
if (only) {
  const suite = (await import(path.join(here, "suites", only))).default as BenchSuite;
  process.stdout.write(JSON.stringify(await suite.run()));
  process.exit(0);
}

/** Runs one suite file in a child process; resolves to its rows (or rejects with its error output). */
function runSuite(file: string): Promise<BenchRow[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, JOBCHAIN_BENCH_SUITE: file },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => {
      err += d;
      process.stderr.write(d);
    });
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(out) as BenchRow[]);
      else reject(new Error(err.trim().split("\n").slice(-3).join(" ") || `exited with ${code}`));
    });
  });
}

const wanted = process.argv.slice(2);
const files = (await readdir(path.join(here, "suites")))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
  .sort()
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)));

const results: { suite: string; rows: BenchRow[]; error?: string }[] = [];
for (const file of files) {
  const suite = (await import(path.join(here, "suites", file))).default as BenchSuite;
  process.stderr.write(`bench: ${suite.name} ...\n`);
  try {
    results.push({ suite: suite.name, rows: await runSuite(file) });
  } catch (err) {
    results.push({ suite: suite.name, rows: [], error: err instanceof Error ? err.message : String(err) });
  }
}

const fmt = (v: number) =>
  Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : Number(v.toPrecision(3)).toString();
const lines: string[][] = [["suite", "figure", "value", "unit", "target", "met", "note"]];
for (const r of results) {
  if (r.error) lines.push([r.suite, "FAILED", "-", "-", "-", "-", r.error]);
  for (const row of r.rows) {
    lines.push([
      r.suite,
      row.name,
      fmt(row.value),
      row.unit,
      row.target ?? "",
      row.met === undefined ? "" : row.met ? "yes" : "NO",
      row.note ?? "",
    ]);
  }
}
const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
const out = lines.map((l) => l.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  "));
out.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
process.stdout.write(out.join("\n") + "\n");

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
const resultsDir = path.join(here, "results");
await mkdir(resultsDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const json = JSON.stringify({ at: new Date().toISOString(), machine, results }, null, 2);
await writeFile(path.join(resultsDir, `bench-${stamp}.json`), json);
await writeFile(path.join(resultsDir, "latest.json"), json);
process.stdout.write(`\nJSON: ${path.relative(process.cwd(), path.join(resultsDir, "latest.json"))}\n`);
if (results.some((r) => r.error)) process.exitCode = 1;
