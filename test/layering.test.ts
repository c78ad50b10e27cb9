// Layers point one way: core ← jobs, runner ← operator, with the CLI on top. core/ is the bottom layer, so none of
// its files (tests included) may import anything outside core/ but Node builtins and npm packages — not even
// the package itself ("jobchain"), whose root includes the built-in jobs. Its files also import each other
// without cycles. Imports are read from the source text: static, type-only, re-exports and dynamic import() with
// a literal specifier, and `new URL("...", import.meta.url)` references to modules.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers/cli.ts";

const CORE = path.join(REPO, "core");
/** Shared test tools a core unit test may use (they are no product layer). */
const TEST_TOOLS = path.join(REPO, "test/helpers");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return name === "fixtures" || name === "node_modules" ? [] : sourceFiles(full);
      return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith(".d.ts") ? [full] : [];
    });
}

/**
 * The text with comments and the literal parts of template strings blanked (quoted strings kept), so that code
 * written inside a template (a job module a test writes to disk) or a comment is not read as an import.
 */
export function codeOnly(text: string): string {
  let out = "";
  let i = 0;
  const braces: number[] = []; // open braces per template substitution, innermost last
  const blank = (s: string): string => s.replace(/[^\n]/g, " ");
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "`" || (c === "}" && braces.length > 0 && braces[braces.length - 1] === 0)) {
      // The literal part of a template, up to its end or the next substitution.
      if (c === "}") braces.pop();
      let j = i + 1;
      while (j < text.length && text[j] !== "`" && !(text[j] === "$" && text[j + 1] === "{")) j += text[j] === "\\" ? 2 : 1;
      out += " " + blank(text.slice(i + 1, j));
      if (text[j] === "$") {
        braces.push(0);
        out += "  ";
        i = j + 2;
      } else {
        out += " ";
        i = j + 1;
      }
    } else {
      if (braces.length > 0 && c === "{") braces[braces.length - 1]!++;
      if (braces.length > 0 && c === "}") braces[braces.length - 1]!--;
      out += c;
      i++;
    }
  }
  return out;
}

const PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*(["'])([^"']+)\1/g,
  /\bimport\s*(["'])([^"']+)\1/g,
  /\bimport\s*\(\s*(["'])([^"']+)\1/g,
  /\bnew\s+URL\s*\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url/g,
];

/** Every module specifier a file names, with how (URL references are not imports). */
export function specifiersOf(text: string): { spec: string; url: boolean }[] {
  const code = codeOnly(text);
  return PATTERNS.flatMap((re, k) => [...code.matchAll(re)].map((m) => ({ spec: m[2]!, url: k === 3 })));
}

const inside = (dir: string, file: string): boolean => file === dir || file.startsWith(dir + path.sep);

/** Imports from core/ that leave it, and the imports between core files (file → files). */
function scanCore(): { leaving: string[]; edges: Map<string, string[]> } {
  const leaving: string[] = [];
  const edges = new Map<string, string[]>();
  for (const file of sourceFiles(CORE)) {
    const rel = path.relative(REPO, file);
    const own: string[] = [];
    for (const { spec, url } of specifiersOf(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("file:")) {
        const target = spec.startsWith("file:") ? new URL(spec).pathname : path.resolve(path.dirname(file), spec);
        if (inside(CORE, target)) {
          if (!url) own.push(target);
        } else if (!(file.endsWith(".test.ts") && inside(TEST_TOOLS, target))) {
          leaving.push(`${rel} → ${spec}`);
        }
      } else if (spec === "jobchain" || spec.startsWith("jobchain/")) {
        leaving.push(`${rel} → ${spec} (the package root includes the layers above core)`);
      }
    }
    edges.set(file, own);
  }
  return { leaving, edges };
}

describe("layering", () => {
  const { leaving, edges } = scanCore();

  it("core/ imports nothing from outside core/ (node: builtins and npm packages aside)", () => {
    expect(edges.size).toBeGreaterThan(20);
    expect(leaving).toEqual([]);
  });

  it("core/ files import each other without cycles", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, "open");
      stack.push(f);
      for (const t of edges.get(f) ?? []) {
        const target = edges.has(t) ? t : [".ts", ".js"].map((e) => t.replace(/\.(ts|js)$/, e)).find((c) => edges.has(c));
        if (!target) continue;
        if (state.get(target) === "open") cycles.push([...stack.slice(stack.indexOf(target)), target].map((x) => path.relative(CORE, x)).join(" → "));
        else if (!state.has(target)) visit(target);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of edges.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it("reads static, type, dynamic and URL references, and skips comments and template text", () => {
    const text = [
      'import { a } from "./a.ts";',
      'import type { B } from "../jobs/index.ts";',
      'export { c } from "./c.ts";',
      'import "./side-effect.ts";',
      'const m = await import("@opentelemetry/core");',
      'const w = new URL("./worker.ts", import.meta.url);',
      '// import { x } from "../commented.ts";',
      'const file = `import { Job } from "jobchain";\n${"x"}`;',
    ].join("\n");
    expect(specifiersOf(text)).toEqual([
      { spec: "./a.ts", url: false },
      { spec: "../jobs/index.ts", url: false },
      { spec: "./c.ts", url: false },
      { spec: "./side-effect.ts", url: false },
      { spec: "@opentelemetry/core", url: false },
      { spec: "./worker.ts", url: true },
    ]);
  });
});
