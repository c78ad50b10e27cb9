// A private redis-server for a benchmark: free loopback port, temp dir, no persistence; stopped by the suite.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../../test/harness/nats.ts";
import { sleep } from "./stats.ts";

export interface RedisServerHandle {
  host: string;
  port: number;
  version: string;
  stop(): Promise<void>;
}

function ping(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (v: string | undefined) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(undefined));
    sock.on("error", () => done(undefined));
    sock.on("connect", () => sock.write("PING\r\nINFO server\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      const v = /redis_version:(\S+)/.exec(buf);
      if (v) done(v[1]);
    });
  });
}

/** Starts `redis-server` (from PATH or $JOBCHAIN_REDIS_SERVER) with `--save '' --appendonly no`. */
export async function startRedis(): Promise<RedisServerHandle> {
  const binary = process.env.JOBCHAIN_REDIS_SERVER || "redis-server";
  const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-redis-"));
  const port = await freePort();
  let log = "";
  let exited = false;
  const child: ChildProcess = spawn(
    binary,
    ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const onOut = (d: Buffer) => void (log = (log + d.toString()).slice(-8000));
  child.stdout!.on("data", onOut);
  child.stderr!.on("data", onOut);
  const gone = new Promise<void>((resolve) => {
    child.once("exit", () => ((exited = true), resolve()));
    child.once("error", (err) => ((exited = true), (log += `\n${err.message}`), resolve()));
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (!exited) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`redis-server did not start (run \`make redis-server\`):\n${log}`);
    }
    const version = await ping(port);
    if (version) return { host: "127.0.0.1", port, version, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer on port ${port}:\n${log}`);
    }
    await sleep(25);
  }
}
