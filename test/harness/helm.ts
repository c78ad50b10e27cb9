// helm for tests: the binary built by `make helm` (scripts/helm/build.sh) and a runner that returns its output or
// throws with its stderr. Used by the chart tests (helm lint/template) and by the end-to-end suite (helm
// install/upgrade/uninstall against a real cluster: pass its kubeconfig in `env` or `kubeconfig`).
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir, isExecutable, pinnedVersions } from "./controlplane.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** HELM_VERSION of scripts/controlplane/versions.env, or $JOBCHAIN_HELM_VERSION. */
export function helmVersion(): string {
  if (process.env.JOBCHAIN_HELM_VERSION) return process.env.JOBCHAIN_HELM_VERSION;
  const version = pinnedVersions().HELM_VERSION;
  if (!version) throw new Error("scripts/controlplane/versions.env: HELM_VERSION is missing");
  return version;
}

export type HelmBinary = { available: true; path: string } | { available: false; reason: string };

/**
 * The helm binary: $JOBCHAIN_HELM (a path), else this version's build by `make helm`. When there is none, the
 * reason (the build's UNAVAILABLE marker, e.g. "Go is not installed", or that `make helm` has not run).
 */
export function helmBinary(): HelmBinary {
  const given = process.env.JOBCHAIN_HELM;
  if (given) {
    return isExecutable(given) ? { available: true, path: given } : { available: false, reason: `$JOBCHAIN_HELM=${given} is not an executable file` };
  }
  const root = path.join(cacheDir(), "helm", helmVersion());
  const bin = path.join(root, "bin", "helm");
  if (existsSync(path.join(root, ".built")) && isExecutable(bin)) return { available: true, path: bin };
  const marker = path.join(root, "UNAVAILABLE");
  if (existsSync(marker)) return { available: false, reason: `no helm: ${readFileSync(marker, "utf8").trim()}` };
  return { available: false, reason: `no helm: helm ${helmVersion()} is not built in ${root} (run \`make helm\`)` };
}

export interface HelmOptions {
  /** Extra environment (over this process's), e.g. `{ KUBECONFIG }`. */
  env?: Record<string, string | undefined>;
  /** Passed as `--kubeconfig FILE`. */
  kubeconfig?: string;
  cwd?: string;
  /** Written to helm's standard input (e.g. `-f -` values). */
  input?: string;
  /** Killed (SIGKILL) after this many ms; default 120000. */
  timeoutMs?: number;
}

export interface HelmResult {
  stdout: string;
  stderr: string;
}

/** helm exited non-zero, was killed, or could not start; `stderr` is what it printed. */
export class HelmError extends Error {
  override name = "HelmError";
  readonly args: readonly string[];
  /** Exit code; null when helm was killed or could not start. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(args: readonly string[], code: number | null, stdout: string, stderr: string, options?: ErrorOptions) {
    super(`helm ${args.join(" ")} ${code === null ? "was killed or could not start" : `exited ${code}`}: ${stderr.trim() || stdout.trim()}`, options);
    this.args = args;
    this.code = code;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

/** Runs helm; resolves with its output when it exits 0, rejects with HelmError otherwise (or when it is missing). */
export function helm(args: readonly string[], opts: HelmOptions = {}): Promise<HelmResult> {
  const bin = helmBinary();
  if (!bin.available) return Promise.reject(new HelmError(args, null, "", bin.reason));
  const full = opts.kubeconfig ? [...args, "--kubeconfig", opts.kubeconfig] : [...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin.path, full, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${opts.timeoutMs ?? 120_000} ms)`;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new HelmError(full, null, stdout, `${stderr}${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new HelmError(full, code, stdout, stderr));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}
