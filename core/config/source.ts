// Finding and parsing configuration files. Every syntax problem becomes a ConfigProblem with file and line; the
// parsed documents keep their source positions so later checks can point at the line of any path.
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { LineCounter, parseDocument, type Document } from "yaml";
import type { ConfigProblem } from "../errors.ts";

export const SECTIONS = ["jobs", "graphs", "parameters", "pools"] as const;
export type Section = (typeof SECTIONS)[number];

const EXTENSIONS = [".yaml", ".yml", ".json"] as const;
/** Names of the combined file: `jobchain_all` is the original's name and is accepted too. */
const COMBINED_BASES = ["jobchain", "jobchain_all"] as const;

/** One section of the configuration with where it came from. */
export interface SectionSource {
  file: string;
  /** Path prefix of the section inside its file: [] for a dedicated file, ["jobs"] inside a combined file. */
  prefix: (string | number)[];
  data: unknown;
  /** 1-based line of the value at `path` (relative to the section), or of its nearest existing ancestor. */
  lineOf(path: (string | number)[]): number | undefined;
}

export interface ConfigSources {
  /** The configuration directory (job classes in `<dir>/jobs/` are loaded from here). */
  dir: string;
  files: string[];
  sections: Partial<Record<Section, SectionSource>>;
  /** Sections whose file could not be parsed: later checks stay quiet about them instead of piling up. */
  broken: Set<Section>;
  problems: ConfigProblem[];
}

interface ParsedFile {
  file: string;
  data: unknown;
  lineOf(path: (string | number)[]): number | undefined;
}

/** Parses one YAML or JSON file. Returns undefined (and records problems) when it cannot be read or parsed. */
export function parseConfigFile(file: string, text: string, problems: ConfigProblem[]): ParsedFile | undefined {
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    // logLevel "error": yaml would print a process warning for a mapping key that is itself a collection; such
    // a key becomes a string that the checks report (e.g. as an invalid name).
    doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, logLevel: "error" });
  } catch (err) {
    problems.push({ file, path: [], message: `cannot parse: ${(err as Error).message}` });
    return undefined;
  }
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
      const message = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+.*$/, "");
      problems.push({ file, path: [], line, message: `YAML syntax error: ${message}`, hint: "fix the YAML syntax" });
    }
    return undefined;
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    problems.push({ file, path: [], message: `cannot read document: ${(err as Error).message}` });
    return undefined;
  }
  const lineOf = (p: (string | number)[]): number | undefined => {
    for (let n = p.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return lineCounter.linePos(range[0]).line;
    }
    return undefined;
  };
  return { file, data, lineOf };
}

function readParsed(file: string, problems: ConfigProblem[]): ParsedFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    problems.push({ file, path: [], message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? err}` });
    return undefined;
  }
  return parseConfigFile(file, text, problems);
}

function sectionsOfCombined(parsed: ParsedFile, problems: ConfigProblem[]): Partial<Record<Section, SectionSource>> {
  const out: Partial<Record<Section, SectionSource>> = {};
  const { data, file } = parsed;
  if (data === null || data === undefined) {
    problems.push({ file, path: [], line: 1, message: "the file is empty", hint: "add `jobs:` and `graphs:` sections" });
    return out;
  }
  if (typeof data !== "object" || Array.isArray(data)) {
    problems.push({
      file,
      path: [],
      line: parsed.lineOf([]),
      message: "expected a mapping with keys jobs, graphs and optionally parameters",
      hint: "see examples/ for the layout of a combined file",
    });
    return out;
  }
  for (const [key, value] of Object.entries(data)) {
    if ((SECTIONS as readonly string[]).includes(key)) {
      out[key as Section] = { file, prefix: [key], data: value, lineOf: (p) => parsed.lineOf([key, ...p]) };
    } else {
      problems.push({
        file,
        path: [key],
        line: parsed.lineOf([key]),
        message: `unknown top-level key '${key}'`,
        hint: "a combined file has only the keys jobs, graphs, parameters and pools",
      });
    }
  }
  return out;
}

function existingFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Locates and parses the configuration at `target`: the path of a combined file, or a directory with
 * `jobs.yaml` + `graphs.yaml` (+ `parameters.yaml`), a combined `jobchain.yaml`, or both (a dedicated file
 * overrides that section of the combined file). `.yml` and `.json` work as well.
 */
export function readConfigSources(target: string): ConfigSources {
  const problems: ConfigProblem[] = [];
  let stat;
  try {
    stat = statSync(target);
  } catch {
    problems.push({
      file: target,
      path: [],
      message: "no such file or directory",
      hint: "give a configuration directory (with jobs.yaml and graphs.yaml) or a combined jobchain.yaml",
    });
    return { dir: target, files: [], sections: {}, broken: new Set(), problems };
  }
  if (stat.isFile()) {
    const parsed = readParsed(target, problems);
    const sections = parsed ? sectionsOfCombined(parsed, problems) : {};
    const broken = new Set<Section>(parsed ? [] : SECTIONS);
    return { dir: path.dirname(target), files: [target], sections, broken, problems };
  }

  const dir = target;
  const files: string[] = [];
  const pick = (base: string): string | undefined => {
    const found = EXTENSIONS.map((ext) => path.join(dir, base + ext)).filter(existingFile);
    if (found.length > 1) {
      problems.push({
        file: found[0]!,
        path: [],
        message: `several files define the same thing: ${found.map((f) => path.basename(f)).join(", ")}`,
        hint: "keep only one of them",
      });
    }
    return found[0];
  };
  let sections: Partial<Record<Section, SectionSource>> = {};
  const broken = new Set<Section>();
  const combinedFiles = COMBINED_BASES.map(pick).filter((f): f is string => f !== undefined);
  if (combinedFiles.length > 1) {
    problems.push({
      file: combinedFiles[0]!,
      path: [],
      message: `both ${combinedFiles.map((f) => path.basename(f)).join(" and ")} exist`,
      hint: "keep only one combined file",
    });
  }
  if (combinedFiles[0]) {
    files.push(combinedFiles[0]);
    const parsed = readParsed(combinedFiles[0], problems);
    if (parsed) sections = sectionsOfCombined(parsed, problems);
    else for (const s of SECTIONS) broken.add(s);
  }
  for (const section of SECTIONS) {
    const file = pick(section);
    if (!file) continue;
    files.push(file);
    const parsed = readParsed(file, problems);
    if (parsed) {
      sections[section] = { file, prefix: [], data: parsed.data, lineOf: parsed.lineOf };
      broken.delete(section);
    } else {
      delete sections[section];
      broken.add(section);
    }
  }
  if (files.length === 0) {
    problems.push({
      file: dir,
      path: [],
      message: "no configuration found in this directory",
      hint: "add jobs.yaml and graphs.yaml (and optionally parameters.yaml), or one jobchain.yaml with those sections",
    });
  }
  return { dir, files, sections, broken, problems };
}

/** Wraps already-parsed data (a config written in code) as sources, so it gets the same checks as files. */
export function sourcesFromObject(
  config: Partial<Record<Section, unknown>>,
  label = "<inline config>",
  dir = process.cwd(),
): ConfigSources {
  const sections: Partial<Record<Section, SectionSource>> = {};
  for (const s of SECTIONS) {
    if (config[s] !== undefined) sections[s] = { file: label, prefix: [s], data: config[s], lineOf: () => undefined };
  }
  return { dir, files: [], sections, broken: new Set(), problems: [] };
}
