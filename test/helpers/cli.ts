import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(REPO, "bin/jobchain.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON Lines. */
  lines: Record<string, unknown>[];
  /** performance.now() when stdout last received data, and when the process exited. */
  lastStdoutAt: number | undefined;
  exitedAt: number;
}

/** Runs the real `jobchain` binary (from dist/, so `make build` must have run) and collects its output. */
export function cli(args: string[], options: { cwd?: string; stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, JOBCHAIN_LOG_LEVEL: "warn", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let lastStdoutAt: number | undefined;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      lastStdoutAt = performance.now();
    });
    let exitedAt = 0;
    child.on("exit", () => (exitedAt = performance.now()));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const lines = stdout
        .split("\n")
        .filter((l) => l.trim().startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, lines, lastStdoutAt, exitedAt });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

/** True when `text` contains a JavaScript stack trace. */
export function hasStack(text: string): boolean {
  return /^\s+at .+(\(|:\d+)/m.test(text);
}
