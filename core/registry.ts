// Job classes by registered name. Only registered classes can run: a graph names a type, never code, so a
// configuration or a cluster resource can never make a runner execute code that is not installed with it.
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { isJobClass, type JobClass } from "./job.ts";

const JOB_FILE = /\.(ts|mts|js|mjs)$/;
const SKIPPED_FILE = /(\.d\.[cm]?ts|\.(test|spec)\.[cm]?[jt]s)$/;

interface Entry {
  cls: JobClass;
  source: string;
  builtin: boolean;
}

/** Lists job modules under `dir`, recursively, in a stable order; skips tests, declarations and dot folders. */
export function listJobFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith(".") || name === "node_modules") continue;
      const full = path.join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (JOB_FILE.test(name) && !SKIPPED_FILE.test(name)) out.push(full);
    }
  };
  walk(dir);
  return out;
}

export class JobRegistry {
  private readonly entries = new Map<string, Entry>();

  /**
   * Registers `cls` under its class name and its static `alias`, if any. A user class may replace a built-in
   * of the same name; two different user classes with one name are a conflict.
   */
  register(cls: JobClass, source = "<code>", builtin = false): void {
    const names = [cls.name, ...(cls.alias ? [cls.alias] : [])];
    for (const name of names) {
      const existing = this.entries.get(name);
      if (existing && existing.cls !== cls && !existing.builtin && !builtin) {
        throw new ConfigError([
          {
            file: source,
            path: [],
            message: `job type '${name}' is defined twice: here and in ${existing.source}`,
            hint: "rename one of the classes, or give it a different static alias",
          },
        ]);
      }
      if (existing && builtin && !existing.builtin) continue;
      this.entries.set(name, { cls, source, builtin });
    }
  }

  has(type: string): boolean {
    return this.entries.has(type);
  }

  /** The class registered as `type`; throws an Error naming the known types when there is none. */
  get(type: string): JobClass {
    const e = this.entries.get(type);
    if (!e) throw new Error(`unknown job type '${type}'; known: ${this.names().join(", ")}`);
    return e.cls;
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Where the class registered as `type` came from (a file path or URL, or "<code>"). */
  sourceOf(type: string): string | undefined {
    return this.entries.get(type)?.source;
  }

  /** Whether `type` is one of the package's built-in jobs (not replaced by a user class). */
  isBuiltin(type: string): boolean {
    return this.entries.get(type)?.builtin ?? false;
  }

  /** A copy that can take more registrations without changing this one. */
  clone(): JobRegistry {
    const copy = new JobRegistry();
    for (const [k, v] of this.entries) copy.entries.set(k, v);
    return copy;
  }

  /**
   * Imports every job module under `dir` (recursively: `.ts`, `.mts`, `.js`, `.mjs`) and registers each exported
   * job class. Returns the problems found (unreadable directory, a module that fails to load, conflicts)
   * instead of throwing, so they can be reported together with configuration problems.
   */
  async loadDirectory(dir: string, { required = true }: { required?: boolean } = {}): Promise<ConfigProblem[]> {
    let files: string[];
    try {
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      files = listJobFiles(dir);
    } catch (err) {
      if (!required) return [];
      return [
        {
          file: dir,
          path: [],
          message: `cannot read job directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          hint: "give an existing directory with job modules",
        },
      ];
    }
    const problems: ConfigProblem[] = [];
    for (const file of files) {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
      } catch (err) {
        const e = err as Error & { code?: string };
        const hint =
          e.code === "ERR_MODULE_NOT_FOUND" && /package '([^']+)'/.test(e.message) && !/'jobchain'/.test(e.message)
            ? `install the missing package where your jobs live (npm install ${/package '([^']+)'/.exec(e.message)![1]})`
            : e.code === "ERR_MODULE_NOT_FOUND" && /'jobchain'/.test(e.message)
            ? "install the package where your jobs live (npm install jobchain)"
            : e.code === "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX"
              ? "TypeScript job files may use only erasable syntax (no enums, no parameter properties)"
              : "fix the module so that it can be imported";
        problems.push({ file, path: [], message: `cannot load job module: ${e.message.split("\n")[0]}`, hint });
        continue;
      }
      for (const value of Object.values(mod)) {
        if (!isJobClass(value)) continue;
        try {
          this.register(value, file);
        } catch (err) {
          if (err instanceof ConfigError) problems.push(...err.problems);
          else throw err;
        }
      }
    }
    return problems;
  }
}
