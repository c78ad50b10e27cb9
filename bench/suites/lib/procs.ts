// Child processes of a benchmark: `jobchain` CLI commands run from the compiled package (dist/, `make build`),
// as the operator would run them. Every process started here is killed when the benchmark process exits or is
// interrupted, and by a small watchdog if it is killed outright (SIGKILL).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onProcessExit } from "../../../test/harness/exit-hooks.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
/** The CLI entry point (bin/jobchain.js, which loads dist/). */
export const CLI = path.join(root, "bin", "jobchain.js");

export interface CliProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: boolean;
  /** The last ~16 KiB of its stdout and stderr. */
  log(): string;
  /** Resolves once `pattern` appears in its output; rejects when it exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** Resident set size in MB from /proc/<pid>/status (VmRSS), undefined when not available. */
  rssMB(): number | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();
let hooked = false;
function killAll(): void {
  for (const c of live) c.kill("SIGKILL");
}

/** Kills `childPid` if this process dies first; exits by itself when the child exits. */
function spawnWatchdog(childPid: number): void {
  const script =
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${childPid} 2>/dev/null; do sleep 1; done; ` +
    `kill -0 ${process.pid} 2>/dev/null || kill -9 ${childPid} 2>/dev/null`;
  try {
    const w = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore" });
    w.on("error", () => {});
    w.unref();
  } catch {
    // best effort: the exit hooks still apply
  }
}

export interface SpawnCliOptions {
  name: string;
  /** Extra arguments for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Another CLI entry point (e.g. of another build); default bin/jobchain.js of this tree. */
  cli?: string;
}

/** Runs `node bin/jobchain.js ...args` with the same node binary as this process. */
export function spawnCli(args: string[], opts: SpawnCliOptions): CliProcess {
  if (!hooked) {
    hooked = true;
    onProcessExit(killAll);
  }
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.cli ?? CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  live.add(child);
  if (child.pid !== undefined) spawnWatchdog(child.pid);
  let log = "";
  let exited = false;
  let code: number | null = null;
  const watchers = new Set<() => void>();
  const onOut = (d: Buffer) => {
    log = (log + d.toString()).slice(-16_384);
    for (const w of watchers) w();
  };
  child.stdout!.on("data", onOut);
  child.stderr!.on("data", onOut);
  const gone = new Promise<void>((resolve) => {
    const done = (c: number | null) => {
      exited = true;
      code = c;
      live.delete(child);
      for (const w of watchers) w();
      resolve();
    };
    child.once("exit", (c) => done(c));
    child.once("error", (err) => {
      log += `\n${err.message}`;
      done(null);
    });
  });
  return {
    name: opts.name,
    pid: child.pid ?? -1,
    get exited() {
      return exited;
    },
    log: () => log,
    waitFor(pattern, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = () => {
          if (pattern.test(log)) {
            finish();
            resolve();
          } else if (exited) {
            finish();
            reject(new Error(`${opts.name} exited (code ${code}) before it was ready:\n${log.slice(-2000)}`));
          }
        };
        const finish = () => {
          watchers.delete(check);
          clearTimeout(timer);
        };
        timer = setTimeout(() => {
          finish();
          reject(new Error(`${opts.name} not ready after ${timeoutMs} ms:\n${log.slice(-2000)}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    rssMB() {
      try {
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        return m ? Number(m[1]) / 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    async stop(graceMs = 10_000) {
      if (!exited) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await gone;
        clearTimeout(t);
      }
      return code;
    },
  };
}

/** Stops all of `procs` at once (SIGTERM, SIGKILL after `graceMs`). */
export async function stopAll(procs: CliProcess[], graceMs = 10_000): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(graceMs)));
}

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat; undefined when unavailable. */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of proc(5) (utime, stime), in clock ticks of 1/100 s on Linux.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}
