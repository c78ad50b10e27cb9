import { spawn, type ChildProcess } from "node:child_process";
import { BIN, REPO } from "./cli.ts";

export interface Proc {
  child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Resolves once stderr contains `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** Starts `jobchain <args>` as a real process (from dist/). Killed with SIGKILL when the test process exits. */
export function jobchain(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO,
    env: { ...process.env, JOBCHAIN_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let err = "";
  let out = "";
  const watchers: (() => void)[] = [];
  child.stderr!.on("data", (d: Buffer) => {
    err += d;
    for (const w of watchers) w();
  });
  child.stdout!.on("data", (d: Buffer) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    waitFor(text, timeoutMs = 30_000) {
      const has = () => (typeof text === "string" ? err.includes(text) : text.test(err));
      if (has()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${text} in stderr:\n${err}`)), timeoutMs);
        const check = () => {
          if (has()) {
            clearTimeout(t);
            resolve();
          }
        };
        watchers.push(check);
        void exited.then((code) => {
          clearTimeout(t);
          if (!has()) reject(new Error(`process exited (${code}) before ${text}; stderr:\n${err}`));
        });
      });
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Starts a runner and resolves once it consumes. */
export async function startRunner(config: string, args: string[], natsUrl: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = jobchain(["runner", config, "--nats", natsUrl, ...args], env);
  await p.waitFor("jobchain runner: serving");
  return p;
}
