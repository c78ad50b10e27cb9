// Property and fuzz tests of the configuration loader: whatever is in the configuration files, loading either
// succeeds or fails with a ConfigError whose problems each name a file and say something, never with another
// error; and the CLI reports such configurations with exit code 2 and no stack trace.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, JobChain, createLogger, instantiate, loadConfig } from "../index.ts";

const SEED = 0x5eed_c0f;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const logger = createLogger({ level: "silent" });
const run = promisify(execFile);

let tmp: string;
/** Process warnings (e.g. from the YAML library) would reach the CLI user's terminal: none are expected. */
const warnings: string[] = [];
const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "jobchain-fuzz-"));
  process.on("warning", onWarning);
});
afterAll(() => {
  process.off("warning", onWarning);
  rmSync(tmp, { recursive: true, force: true });
});

let dirCounter = 0;
/** A fresh, empty directory for one generated configuration. */
function freshDir(): string {
  const dir = path.join(tmp, `c${++dirCounter}`);
  mkdirSync(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// The property every load must satisfy.

function checkConfigError(err: unknown): asserts err is ConfigError {
  if (!(err instanceof ConfigError)) {
    throw new Error(`expected a ConfigError, got: ${(err as Error)?.stack ?? String(err)}`);
  }
  expect(err.problems.length).toBeGreaterThan(0);
  for (const p of err.problems) {
    expect(typeof p.message).toBe("string");
    expect(p.message.trim().length).toBeGreaterThan(0);
    expect(typeof p.file).toBe("string");
    expect(p.file.length).toBeGreaterThan(0);
    expect(Array.isArray(p.path)).toBe(true);
    for (const part of p.path) expect(["string", "number"]).toContain(typeof part);
    if (p.line !== undefined) {
      expect(Number.isInteger(p.line)).toBe(true);
      expect(p.line).toBeGreaterThanOrEqual(1);
    }
  }
}

/** Loads `target`; when valid, also builds the jobs and a chain. Returns the instance ids or the ConfigError. */
async function load(target: string): Promise<string[] | ConfigError> {
  const warned = warnings.length;
  let result: string[] | ConfigError;
  try {
    const { config, registry } = await loadConfig(target);
    const chain = new JobChain(instantiate(config, registry), { logger });
    result = chain.graphIds;
  } catch (err) {
    checkConfigError(err);
    result = err;
  }
  await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
  expect(warnings.slice(warned)).toEqual([]);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Generators.

/** Words the loader gives meaning to, plus names that are troublesome as object keys. */
const WORDS = [
  "jobs",
  "graphs",
  "parameters",
  "type",
  "properties",
  "next",
  "retry",
  "attempts",
  "backoff",
  "initial",
  "factor",
  "jitter",
  "timeout",
  "concurrency",
  "rateLimit",
  "max",
  "per",
  "key",
  "save_result",
  "Echo",
  "Passthrough",
  "Merge",
  "Delay",
  "Fail",
  "HttpFetch",
  "OpenAIChat",
  "a",
  "b",
  "c",
  "g",
  "grp",
  "$p",
  "$q",
  "p",
  "q",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "-bad",
  "x y",
  "",
];

const word = fc.constantFrom(...WORDS);
const key = fc.oneof({ weight: 5, arbitrary: word }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
const scalar = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -5, max: 2000 }),
  fc.double(),
  fc.string({ maxLength: 10 }),
  fc.constant(null),
  word,
);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(key, tie("value"), { maxKeys: 5 }),
  ),
}));

/** Values shaped roughly like a configuration, so that generated input reaches the deeper checks. */
const jobName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom("a", "b", "c", "d") }, { weight: 1, arbitrary: key });
const jobEntry = fc.oneof(
  { weight: 5, arbitrary: fc.record(
    {
      type: fc.oneof(fc.constantFrom("Echo", "Passthrough", "Merge", "Delay", "Fail", "HttpFetch", "OpenAIChat", "Ech0"), value),
      properties: fc.oneof(fc.dictionary(key, fc.oneof(fc.constantFrom("$p", "$q"), value), { maxKeys: 3 }), value),
      retry: fc.oneof(fc.record({ attempts: fc.integer({ min: -1, max: 4 }), backoff: value }, { requiredKeys: ["attempts"] }), value),
      timeout: fc.oneof(fc.double({ min: -1, max: 10 }), value),
      concurrency: fc.oneof(fc.integer({ min: -1, max: 4 }), value),
      rateLimit: fc.oneof(fc.record({ max: fc.integer({ min: 0, max: 3 }), per: fc.double({ min: 0, max: 2 }), key: word }, { requiredKeys: [] }), value),
      save_result: fc.oneof(fc.boolean(), value),
    },
    { requiredKeys: [] },
  ) },
  { weight: 1, arbitrary: value },
);
const graphNode = fc.oneof(
  fc.constant(null),
  fc.record({ next: fc.oneof(fc.array(jobName, { maxLength: 3 }), jobName, fc.constant(null), value) }, { requiredKeys: [] }),
  value,
);
const graphBody = fc.oneof({ weight: 5, arbitrary: fc.dictionary(jobName, graphNode, { maxKeys: 4 }) }, { weight: 1, arbitrary: value });
const graphName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("g", "h") }, { weight: 1, arbitrary: key });
const paramSet = fc.oneof(fc.dictionary(fc.constantFrom("p", "q", "r"), value, { maxKeys: 2 }), value);
const parametersSection = fc.dictionary(
  graphName,
  fc.oneof(
    fc.dictionary(fc.oneof(fc.constantFrom("one", "two"), key), fc.oneof(fc.dictionary(jobName, fc.oneof(paramSet, fc.array(paramSet, { maxLength: 2 })), { maxKeys: 3 }), value), { maxKeys: 2 }),
    value,
  ),
  { maxKeys: 2 },
);
const configObject = fc.record(
  {
    jobs: fc.oneof({ weight: 5, arbitrary: fc.dictionary(jobName, jobEntry, { maxKeys: 4 }) }, { weight: 1, arbitrary: value }),
    graphs: fc.oneof({ weight: 5, arbitrary: fc.dictionary(graphName, graphBody, { maxKeys: 2 }) }, { weight: 1, arbitrary: value }),
    parameters: fc.oneof({ weight: 3, arbitrary: parametersSection }, { weight: 1, arbitrary: value }),
  },
  { requiredKeys: [] },
);

/** Text that looks a bit like YAML: fragments of syntax, in any order. */
const FRAGMENTS = [
  "jobs:",
  "graphs:",
  "parameters:",
  "\n",
  "\n",
  "  ",
  "    ",
  "- ",
  ": ",
  "a",
  "b",
  "type: Echo",
  "next: [b]",
  "next: a",
  "{",
  "}",
  "[",
  "]",
  ", ",
  "&x ",
  "*x",
  "*nope",
  "<<: *x",
  "!!str ",
  "!!binary ",
  "!!map ",
  "!!js/function ",
  "!custom ",
  "? ",
  "|\n",
  ">-\n",
  "#c",
  "'",
  '"',
  "---\n",
  "...\n",
  "%YAML 1.2\n",
  "%TAG ! tag:x,2000:\n",
  "\t",
  "$p",
  "~",
  "null",
  "1e999",
  "0x1F",
  "-.inf",
  ".nan",
  "\u0000",
  "\uFEFF",
  "é",
  "\r\n",
  "\\",
];
const yamlish = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 40 }).map((parts) => parts.join(""));

/** The contents of one file, as bytes. */
const fileContent = fc.oneof(
  yamlish.map((s) => Buffer.from(s)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.string({ unit: "binary", maxLength: 100 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
  value.map((v) => Buffer.from(stringify(v))),
  value.map((v) => Buffer.from(JSON.stringify(v) ?? "")),
);

const SPLIT_NAMES = ["jobs", "graphs", "parameters"] as const;
const COMBINED_NAMES = ["jobchain", "jobchain_all"] as const;
const EXTS = [".yaml", ".yml", ".json"] as const;

/** A directory layout: which files exist, with what contents; and whether to load the directory or one file. */
const layout = fc.record({
  files: fc.uniqueArray(
    fc.tuple(fc.constantFrom<string>(...SPLIT_NAMES, ...COMBINED_NAMES), fc.constantFrom(...EXTS), fileContent),
    { minLength: 0, maxLength: 4, selector: ([base, ext]) => base + ext },
  ),
  targetFile: fc.boolean(),
});

function writeLayout(files: [string, string, Buffer][], targetFile: boolean): string {
  const dir = freshDir();
  for (const [base, ext, content] of files) writeFileSync(path.join(dir, base + ext), content);
  return targetFile && files.length > 0 ? path.join(dir, files[0]![0] + files[0]![1]) : dir;
}

// ---------------------------------------------------------------------------------------------------------------
// A valid configuration and mutations of it.

const BASE = {
  jobs: {
    fetch: {
      type: "HttpFetch",
      properties: { url: "$url", max_bytes: 1000 },
      retry: { attempts: 3, backoff: { initial: 0.1, factor: 2 } },
      timeout: 5,
    },
    clean: { type: "Echo", properties: { add: { cleaned: true } } },
    words: { type: "Passthrough" },
    tone: { type: "Delay", properties: { ms: 1 }, concurrency: 2, rateLimit: { max: 5, per: 1, key: "tone" } },
    report: { type: "Merge", save_result: true },
  },
  graphs: {
    pipeline: {
      fetch: { next: ["clean"] },
      clean: { next: ["words", "tone"] },
      words: { next: "report" },
      tone: { next: ["report"] },
      report: null,
    },
    small: { clean: { next: [] } },
  },
  parameters: {
    pipeline: {
      local: { fetch: { url: "http://127.0.0.1:1/a" } },
      remote: { fetch: [{ url: "http://127.0.0.1:1/b" }] },
    },
  },
};
const BASE_IDS = ["pipeline/local", "pipeline/remote", "small"];
const JOB_NAMES = Object.keys(BASE.jobs);
const GRAPH_NAMES = Object.keys(BASE.graphs);

type Obj = Record<string, unknown>;
type Path = (string | number)[];
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function allPaths(v: unknown, base: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(v)) {
    v.forEach((x, i) => out.push([...base, i], ...allPaths(x, [...base, i])));
  } else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) out.push([...base, k], ...allPaths(x, [...base, k]));
  }
  return out;
}

function parentOf(root: unknown, p: Path): unknown {
  let cur = root;
  for (const part of p.slice(0, -1)) cur = (cur as Obj)[part as string];
  return cur;
}

function deleteAt(root: Obj, p: Path): void {
  const parent = parentOf(root, p);
  const last = p[p.length - 1]!;
  if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete (parent as Obj)[last as string];
}

function setAt(root: Obj, p: Path, v: unknown): void {
  const parent = parentOf(root, p) as Obj;
  Object.defineProperty(parent, p[p.length - 1]!, { value: v, enumerable: true, writable: true, configurable: true });
}

function nextOf(node: unknown): string[] {
  const n = isObj(node) ? node.next : undefined;
  return typeof n === "string" ? [n] : Array.isArray(n) ? n.filter((t): t is string => typeof t === "string") : [];
}

/** Renames a job in the jobs section and, when `everywhere`, in every graph, next list and parameter group. */
function renameJob(cfg: typeof BASE, from: string, to: string, everywhere: boolean): void {
  const rename = (o: Obj): Obj => Object.fromEntries(Object.entries(o).map(([k, v]) => [k === from ? to : k, v]));
  (cfg as Obj).jobs = rename(cfg.jobs);
  if (!everywhere) return;
  for (const g of Object.keys(cfg.graphs)) {
    const graph = rename((cfg.graphs as Obj)[g] as Obj);
    for (const [k, node] of Object.entries(graph)) {
      if (isObj(node)) graph[k] = { ...node, next: nextOf(node).map((t) => (t === from ? to : t)) };
    }
    (cfg.graphs as Obj)[g] = graph;
  }
  for (const groups of Object.values(cfg.parameters)) {
    for (const [group, perJob] of Object.entries(groups)) (groups as Obj)[group] = rename(perJob as Obj);
  }
}

/** Adds an edge that closes a cycle in graph `g`: the reverse of an existing edge, or a self-loop. */
function addCycle(cfg: typeof BASE, g: string, pick: number): void {
  const graph = (cfg.graphs as Obj)[g] as Obj;
  const edges = Object.entries(graph).flatMap(([u, node]) => nextOf(node).map((v) => [u, v] as const));
  const [u, v] = edges.length > 0 ? edges[pick % edges.length]! : [Object.keys(graph)[0]!, Object.keys(graph)[0]!];
  graph[v] = { next: [...nextOf(graph[v]), u] };
}

type ObjMutation =
  | { kind: "delete"; at: number }
  | { kind: "replace"; at: number; value: unknown }
  | { kind: "rename"; job: number; to: string; everywhere: boolean }
  | { kind: "cycle"; graph: number; pick: number };

type TextMutation =
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "duplicate"; line: number };

const newName = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/).filter((n) => !JOB_NAMES.includes(n));
const objMutation: fc.Arbitrary<ObjMutation> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), value }),
  fc.record({ kind: fc.constant("rename" as const), job: fc.nat(), to: newName, everywhere: fc.boolean() }),
  fc.record({ kind: fc.constant("cycle" as const), graph: fc.nat(), pick: fc.nat() }),
);
const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ minLength: 1, maxLength: 5 }), fc.string({ unit: "binary", minLength: 1, maxLength: 3 })),
  }),
  fc.record({ kind: fc.constant("duplicate" as const), line: fc.nat() }),
);

function applyObj(cfg: typeof BASE, m: ObjMutation): void {
  switch (m.kind) {
    case "delete":
    case "replace": {
      const paths = allPaths(cfg);
      const p = paths[m.at % paths.length]!;
      if (m.kind === "delete") deleteAt(cfg, p);
      else setAt(cfg, p, m.value);
      return;
    }
    case "rename": {
      const jobs = Object.keys(isObj(cfg.jobs) ? cfg.jobs : {});
      if (jobs.length > 0) renameJob(cfg, jobs[m.job % jobs.length]!, m.to, m.everywhere);
      return;
    }
    case "cycle": {
      const graphs = isObj(cfg.graphs) ? Object.keys(cfg.graphs).filter((g) => isObj((cfg.graphs as Obj)[g]) && Object.keys((cfg.graphs as Obj)[g] as Obj).length > 0) : [];
      if (graphs.length > 0) addCycle(cfg, graphs[m.graph % graphs.length]!, m.pick);
      return;
    }
  }
}

function applyText(bytes: Buffer, m: TextMutation): Buffer {
  switch (m.kind) {
    case "truncate":
      return bytes.subarray(0, m.at % (bytes.length + 1));
    case "insert": {
      const at = m.at % (bytes.length + 1);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(m.text), bytes.subarray(at)]);
    }
    case "duplicate": {
      const lines = bytes.toString("utf8").split("\n");
      const i = m.line % lines.length;
      lines.splice(i, 0, lines[i]!);
      return Buffer.from(lines.join("\n"));
    }
  }
}

type Format = "combined-yaml" | "combined-json" | "split-yaml" | "split-json" | "combined-file";
const format = fc.constantFrom<Format>("combined-yaml", "combined-json", "split-yaml", "split-json", "combined-file");

/** Writes `cfg` in `fmt`, applies text mutations to the file at `fileIndex`; returns the path to load. */
function writeConfig(cfg: unknown, fmt: Format, text: TextMutation[] = [], fileIndex = 0): string {
  const dir = freshDir();
  const json = fmt.endsWith("json");
  const ser = (v: unknown): Buffer => Buffer.from(json ? JSON.stringify(v, null, 2) : stringify(v));
  let files: [string, Buffer][];
  if (fmt.startsWith("split")) {
    const c = cfg as Obj;
    files = SPLIT_NAMES.filter((s) => Object.hasOwn(c, s)).map((s) => [s + (json ? ".json" : ".yaml"), ser(c[s])]);
    if (files.length === 0) files = [["jobs.yaml", Buffer.from("")]];
  } else {
    files = [[json ? "jobchain.json" : "jobchain.yaml", ser(cfg)]];
  }
  const target = files[fileIndex % files.length]!;
  for (const m of text) target[1] = applyText(target[1], m);
  for (const [name, bytes] of files) writeFileSync(path.join(dir, name), bytes);
  return fmt === "combined-file" ? path.join(dir, files[0]![0]) : dir;
}

const mutated = fc.record({
  obj: fc.array(objMutation, { maxLength: 3 }),
  text: fc.array(textMutation, { maxLength: 2 }),
  format,
  fileIndex: fc.nat(),
});

function mutatedTarget(m: { obj: ObjMutation[]; text: TextMutation[]; format: Format; fileIndex: number }): string {
  const cfg = structuredClone(BASE);
  for (const om of m.obj) applyObj(cfg, om);
  return writeConfig(cfg, m.format, m.text, m.fileIndex);
}

/** "Billion laughs": nine levels of ten aliases each. */
function aliasBomb(): string {
  const lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
  for (let i = 1; i <= 8; i++) lines.push(`x${i}: &x${i} [${new Array(10).fill(`*x${i - 1}`).join(", ")}]`);
  lines.push("jobs: *x8", "graphs: *x8");
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------------------------

describe("config loader under arbitrary input", () => {
  it("the valid base configuration loads in every format", async () => {
    for (const fmt of ["combined-yaml", "combined-json", "split-yaml", "split-json", "combined-file"] as const) {
      expect(await load(writeConfig(BASE, fmt))).toEqual(BASE_IDS);
    }
  });

  it("arbitrary bytes in any layout of configuration files: valid, or a ConfigError", async () => {
    await fc.assert(
      fc.asyncProperty(layout, async ({ files, targetFile }) => {
        await load(writeLayout(files, targetFile));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("arbitrary configuration-shaped values, combined or split: valid, or a ConfigError", async () => {
    await fc.assert(
      fc.asyncProperty(configObject, fc.constantFrom<Format>("combined-yaml", "split-yaml", "split-json", "combined-file"), async (cfg, fmt) => {
        await load(writeConfig(cfg, fmt));
      }),
      { seed: SEED + 1, numRuns: 400 },
    );
  });

  it("mutations of a valid configuration: valid, or a ConfigError", async () => {
    await fc.assert(
      fc.asyncProperty(mutated, async (m) => {
        await load(mutatedTarget(m));
      }),
      { seed: SEED + 2, numRuns: 500 },
    );
  });

  it("an added cycle is always reported, naming the graph", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), format, async (graph, pick, fmt) => {
        const cfg = structuredClone(BASE);
        const g = GRAPH_NAMES[graph % GRAPH_NAMES.length]!;
        addCycle(cfg, g, pick);
        const result = await load(writeConfig(cfg, fmt));
        expect(result).toBeInstanceOf(ConfigError);
        const cycles = (result as ConfigError).problems.filter((p) => p.message.startsWith(`graph '${g}' has a cycle: `));
        expect(cycles).toHaveLength(1);
        expect(cycles[0]!.path).toEqual(fmt.startsWith("split") ? [g] : ["graphs", g]);
        if (!fmt.endsWith("json")) expect(cycles[0]!.line).toBeGreaterThanOrEqual(1);
      }),
      { seed: SEED + 3, numRuns: 60 },
    );
  });

  it("renaming a job everywhere keeps the configuration valid; renaming it only in jobs names every use", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...JOB_NAMES), newName, format, async (from, to, fmt) => {
        const everywhere = structuredClone(BASE);
        renameJob(everywhere, from, to, true);
        expect(await load(writeConfig(everywhere, fmt))).toEqual(BASE_IDS);

        const onlyJobs = structuredClone(BASE);
        renameJob(onlyJobs, from, to, false);
        const result = await load(writeConfig(onlyJobs, fmt));
        expect(result).toBeInstanceOf(ConfigError);
        const usedIn = GRAPH_NAMES.filter((g) => Object.hasOwn((BASE.graphs as Obj)[g] as Obj, from));
        const undefinedUses = (result as ConfigError).problems
          .map((p) => p.message)
          .filter((msg) => msg.startsWith(`job '${from}' in graph `));
        expect(undefinedUses.sort()).toEqual(usedIn.map((g) => `job '${from}' in graph '${g}' is not defined in jobs`).sort());
      }),
      { seed: SEED + 4, numRuns: 60 },
    );
  });

  // Hostile or odd YAML, each with the problems it must produce (message prefixes), or "valid" with its ids.
  const cases: [string, string, string[] | { valid: string[] } | "either"][] = [
    ["an alias bomb", aliasBomb(), ["cannot read document: Excessive alias count"]],
    // Whether the parser's recursion overflows here depends on the stack size: only the property is checked.
    ["deeply nested flow collections", "jobs: " + "[".repeat(5000) + "]".repeat(5000), "either"],
    [
      "deeply nested block mappings",
      Array.from({ length: 500 }, (_, i) => " ".repeat(i) + "k:").join("\n"),
      ["unknown top-level key 'k'", "no jobs are defined", "no graphs are defined"],
    ],
    ["an undefined alias", "jobs: *nope\ngraphs: {}\n", ["cannot read document: Unresolved alias"]],
    [
      "merge keys",
      "base: &b {type: Echo}\njobs:\n  a:\n    <<: *b\ngraphs: {g: {a: {}}}\n",
      ["unknown top-level key 'base'", "missing required field 'type'", "unknown field '<<'"],
    ],
    ["several documents", "jobs: {a: {type: Echo}}\n---\ngraphs: {g: {a: {}}}\n", ["YAML syntax error: Source contains multiple documents"]],
    // `__proto__` is refused as a name; the property (valid, or a ConfigError) is what is checked here.
    [
      "__proto__ as a job and graph name",
      "jobs: {__proto__: {type: Echo}, constructor: {type: Echo}}\ngraphs: {__proto__: {__proto__: {next: [constructor]}, constructor: {}}}\n",
      "either",
    ],
    [
      "__proto__ as a group name",
      "jobs: {a: {type: Echo, properties: {x: $x}}}\ngraphs: {g: {a: {}}}\nparameters: {g: {__proto__: {a: {x: 1}}}}\n",
      "either",
    ],
    ["constructor and toString as names", "jobs: {constructor: {type: Echo}, toString: {type: Merge}}\ngraphs: {hasOwnProperty: {constructor: {next: toString}, toString: {}}}\n", { valid: ["hasOwnProperty"] }],
    ["a byte-order mark and CRLF", "\uFEFFjobs:\r\n  a: {type: Echo}\r\ngraphs:\r\n  g: {a: {}}\r\n", { valid: ["g"] }],
    ["NUL bytes", "jobs:\u0000\n  a: {type: Echo}\n", ["YAML syntax error: "]],
    // Names are at most 63 characters; a long one is refused quickly (no quadratic "did you mean").
    [
      "a long job name",
      `jobs: {${"x".repeat(2000)}: {type: Echo}}\ngraphs: {g: {${"y".repeat(2000)}: {}}}\n`,
      [`invalid job name '${"x".repeat(2000)}'`, `invalid job name '${"y".repeat(2000)}'`, `job '${"y".repeat(2000)}' in graph 'g' is not defined in jobs`],
    ],
    ["a collection as a mapping key", "jobs:\n  ? [a, b]\n  : {type: Echo}\ngraphs: {g: {a: {}}}\n", ["invalid job name '[ a, b ]'", "job 'a' in graph 'g' is not defined in jobs"]],
    ["custom tags", "jobs: !!set {a}\ngraphs: !custom {g: {}}\n", ["graph 'g' has no jobs"]],
    [
      "binary and timestamps",
      "jobs: {a: {type: !!binary aGVsbG8=, properties: {t: 2001-12-14t21:59:43.10-05:00}}}\ngraphs: {g: {a: {}}}\n",
      ["expected string, received Buffer"],
    ],
  ];
  it.each(cases)("%s", async (_name, text, expected) => {
    const dir = freshDir();
    writeFileSync(path.join(dir, "jobchain.yaml"), text);
    const result = await load(dir);
    if (expected === "either") return;
    if ("valid" in expected) {
      expect(result).toEqual(expected.valid);
      return;
    }
    expect(result).toBeInstanceOf(ConfigError);
    const messages = (result as ConfigError).problems.map((p) => p.message);
    expect(messages).toHaveLength(expected.length);
    expected.forEach((prefix, i) => expect(messages[i]!.startsWith(prefix), `${messages[i]} should start with ${prefix}`).toBe(true));
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("jobchain validate on invalid configurations", () => {
  const bin = path.join(ROOT, "bin", "jobchain.js");

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, "dist", "cli", "main.js"))) {
      await run(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], { cwd: ROOT });
    }
  }, 170_000);

  it("exits with 2 and lists the problems, without a stack trace", async () => {
    // Generated invalid configurations (checked in process first), 20 of them.
    const candidates = fc.sample(fc.oneof(mutated.map((m) => ({ kind: "mutated" as const, m })), layout.map((l) => ({ kind: "layout" as const, l }))), {
      seed: SEED + 5,
      numRuns: 200,
    });
    const cases: { target: string; problems: number }[] = [];
    for (const c of candidates) {
      if (cases.length === 20) break;
      const target = c.kind === "mutated" ? mutatedTarget(c.m) : writeLayout(c.l.files, c.l.targetFile);
      const result = await load(target);
      if (result instanceof ConfigError) cases.push({ target, problems: result.problems.length });
    }
    expect(cases).toHaveLength(20);

    const results: { target: string; problems: number; code: number | null; stdout: string; stderr: string }[] = [];
    const queue = [...cases];
    const worker = async (): Promise<void> => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const out = await run(process.execPath, [bin, "validate", c.target], { cwd: ROOT, env: { ...process.env, JOBCHAIN_LOG_LEVEL: "info" } }).then(
          (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
          (e: { code: number | null; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
        );
        results.push({ ...c, ...out });
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);

    expect(results).toHaveLength(20);
    for (const r of results) {
      const context = `validate ${r.target}:\n${r.stderr}`;
      expect(r.code, context).toBe(2);
      expect(r.stdout, context).toBe("");
      expect(r.stderr.startsWith("jobchain: invalid configuration"), context).toBe(true);
      expect(r.stderr.split("\n")[0], context).toBe(`jobchain: invalid configuration (${r.problems} problem${r.problems === 1 ? "" : "s"}):`);
      expect(r.stderr.split("\n").filter((l) => /^\s+at /.test(l)), context).toEqual([]);
      expect(r.stderr, context).not.toContain("internal error");
    }
  }, 120_000);
});
