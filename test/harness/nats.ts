// Test harness: a real nats-server with JetStream (file storage) on a free loopback port, for integration tests
// and benchmarks. The binary comes from $JOBCHAIN_NATS_SERVER, else the newest build in
// $JOBCHAIN_CACHE_DIR/nats-server/<version>/bin (`make nats-server`), else `nats-server` on PATH.
//
//   const nats = await startNats();
//   const nc = await connect(nats.connectOptions);
//   ...
//   await nats.restart();   // same port and store dir: JetStream state survives
//   await nats.stop();      // removes the temporary store dir
//
// Every server started here is killed when the process exits or is interrupted; a watchdog also kills it (and
// removes its temp dir) if this process dies without running exit handlers (SIGKILL).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { onProcessExit } from "./exit-hooks.ts";

export interface StartNatsOptions {
  /** Client port; a free loopback port when omitted. */
  port?: number;
  /** Enable JetStream (default true), with file storage in `storeDir`. */
  jetstream?: boolean;
  /** JetStream store dir; a dir inside a fresh temp dir (removed by stop()) when omitted. A given dir is kept. */
  storeDir?: string;
  /** HTTP monitoring endpoint (`-m`): true for a free port, or a port number. Off by default. */
  monitor?: boolean | number;
  /** Require user/password authentication. */
  user?: string;
  password?: string;
  /** Require token authentication (exclusive with user/password). */
  token?: string;
  /** Largest message payload the server accepts, in bytes (server default 1 MiB, at most 64 MiB). */
  maxPayload?: number;
  /** Server name (default "jobchain-test-<port>"). */
  serverName?: string;
  /** Extra lines appended to the generated config file. */
  extraConfig?: string;
  /** Extra command-line arguments, e.g. ["-DV"]. */
  args?: string[];
  /** The binary to run (default: see findNatsServer()). */
  binary?: string;
  /** Copy the server's log to this process's stderr (default: env JOBCHAIN_NATS_LOG=1). */
  log?: boolean;
  /** How long to wait for the server to accept connections, ms (default 20000). */
  startTimeoutMs?: number;
}

/** Options to pass to `connect()` from @nats-io/transport-node (servers plus credentials). */
export interface NatsConnectOptions {
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` when monitoring is on. */
  readonly monitorUrl: string | undefined;
  readonly monitorPort: number | undefined;
  /** The JetStream store dir (the server keeps its files in `<storeDir>/jetstream`). */
  readonly storeDir: string;
  /** The generated server config file. */
  readonly configFile: string;
  /** Path of the nats-server binary and its version (e.g. "2.12.15"). */
  readonly binary: string;
  readonly version: string;
  /** Servers and credentials for `connect()`. */
  readonly connectOptions: NatsConnectOptions;
  /** Pid of the running server process (undefined while it is down). */
  readonly pid: number | undefined;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** The last ~64 KiB of the server's log. */
  log(): string;
  /** Graceful shutdown (SIGTERM, SIGKILL after `timeoutMs`), then removes the temp dir. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL, like a crash. The store dir is kept, so `restart()` brings the server (and its state) back. */
  kill(): Promise<void>;
  /**
   * Stops the server (gracefully, or with SIGKILL when `kill` is set) if it is running, then starts it again on
   * the same port and store dir and waits until it accepts connections. Also starts a server after kill().
   */
  restart(opts?: { kill?: boolean }): Promise<void>;
  /**
   * SIGSTOP: the process freezes with its sockets open, like a server stalled by its machine (clients and other
   * servers see silence, not a closed connection). `resume()` (SIGCONT) lets it go on.
   */
  pause(): void;
  resume(): void;
  /** Whether the process is paused. */
  readonly paused: boolean;
  /** stop(), for `await using nats = await startNats()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const HOST = "127.0.0.1";
const LOG_LIMIT = 64 * 1024;

/** Compares dotted versions numerically ("2.12.15" > "2.9.10"); non-numeric parts sort as 0. */
function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, "").split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.replace(/^v/, "").split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function isExecutable(file: string): boolean {
  try {
    return statSync(file).isFile() && (statSync(file).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary: $JOBCHAIN_NATS_SERVER, else the newest version in
 * $JOBCHAIN_CACHE_DIR/nats-server/<version>/bin/nats-server (default cache ~/.cache/jobchain), else PATH
 * (and /usr/sbin, where Debian's package puts it).
 * Throws with the fix (`make nats-server`) when none is found.
 */
export function findNatsServer(): string {
  const fromEnv = process.env.JOBCHAIN_NATS_SERVER;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`JOBCHAIN_NATS_SERVER=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const cacheDir = process.env.JOBCHAIN_CACHE_DIR || path.join(os.homedir(), ".cache", "jobchain");
  const root = path.join(cacheDir, "nats-server");
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^v?\d+\.\d+\.\d+/.test(v) && isExecutable(path.join(root, v, "bin", "nats-server")))
      .sort(compareVersions);
    const newest = versions.at(-1);
    if (newest) return path.join(root, newest, "bin", "nats-server");
  }
  // Debian's package installs into /usr/sbin, which is not on every user's PATH.
  for (const dir of [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin"]) {
    if (!dir) continue;
    const candidate = path.join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error("nats-server not found: run `make nats-server` (or set JOBCHAIN_NATS_SERVER)");
}

const versionCache = new Map<string, string>();
/** The version a nats-server binary reports, e.g. "2.12.15". */
export function natsServerVersion(binary = findNatsServer()): string {
  let v = versionCache.get(binary);
  if (v === undefined) {
    const out = spawnSync(binary, ["--version"], { encoding: "utf8" });
    v = /v?(\d+\.\d+\.\d+\S*)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? "unknown";
    versionCache.set(binary, v);
  }
  return v;
}

/** A free TCP port on the loopback interface (free at the time of the call). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ---- cleanup of every server this process started --------------------------------------------------------------

interface Live {
  child: ChildProcess | undefined;
  tempRoot: string | undefined;
}
const live = new Set<Live>();
let hooksInstalled = false;

function cleanupAllSync(): void {
  for (const s of live) {
    try {
      s.child?.kill("SIGKILL");
    } catch {
      /* already gone */
    }
    if (s.tempRoot) rmSync(s.tempRoot, { recursive: true, force: true });
  }
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  onProcessExit(cleanupAllSync);
}

/** Kills `childPid` (and removes `tempRoot`) if this process dies first; exits by itself when the child exits. */
function spawnWatchdog(childPid: number, tempRoot: string | undefined): void {
  const rm = tempRoot ? `rm -rf '${tempRoot.replaceAll("'", "'\\''")}'` : ":";
  const script =
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${childPid} 2>/dev/null; do sleep 1; done; ` +
    `if ! kill -0 ${process.pid} 2>/dev/null; then kill -9 ${childPid} 2>/dev/null; ${rm}; fi`;
  try {
    const w = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore" });
    w.on("error", () => {});
    w.unref();
  } catch {
    /* best effort: the exit hooks still apply */
  }
}

// ---- the server ------------------------------------------------------------------------------------------------

function q(s: string): string {
  return JSON.stringify(s);
}

function buildConfig(o: {
  port: number;
  monitorPort: number | undefined;
  serverName: string;
  jetstream: boolean;
  storeDir: string;
  opts: StartNatsOptions;
}): string {
  const lines = [`server_name: ${q(o.serverName)}`, `listen: ${q(`${HOST}:${o.port}`)}`];
  if (o.monitorPort !== undefined) lines.push(`http: ${q(`${HOST}:${o.monitorPort}`)}`);
  if (o.jetstream) lines.push(`jetstream {`, `  store_dir: ${q(o.storeDir)}`, `}`);
  if (o.opts.maxPayload !== undefined) lines.push(`max_payload: ${Math.floor(o.opts.maxPayload)}`);
  if (o.opts.token !== undefined) {
    lines.push(`authorization {`, `  token: ${q(o.opts.token)}`, `}`);
  } else if (o.opts.user !== undefined) {
    lines.push(`authorization {`, `  user: ${q(o.opts.user)}`, `  password: ${q(o.opts.password ?? "")}`, `}`);
  }
  if (o.opts.extraConfig) lines.push(o.opts.extraConfig);
  return lines.join("\n") + "\n";
}

/** Resolves once a TCP client on `port` receives the server's INFO line. */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.startsWith("INFO ")) done(true);
      else if (buf.length > 4) done(false);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a nats-server (JetStream with file storage unless `jetstream: false`) and waits until it is ready. */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServerHandle> {
  if (opts.token !== undefined && opts.user !== undefined) throw new Error("startNats: use either token or user/password");
  installHooks();
  const binary = opts.binary ?? findNatsServer();
  const version = natsServerVersion(binary);
  const jetstream = opts.jetstream ?? true;
  const tempRoot = mkdtempSync(path.join(os.tmpdir(), "jobchain-nats-"));
  const storeDir = opts.storeDir ?? path.join(tempRoot, "store");
  const configFile = path.join(tempRoot, "nats.conf");
  const log = opts.log ?? process.env.JOBCHAIN_NATS_LOG === "1";
  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  const state: Live = { child: undefined, tempRoot };
  live.add(state);

  let port = opts.port ?? 0;
  let monitorPort: number | undefined =
    opts.monitor === undefined || opts.monitor === false ? undefined : opts.monitor === true ? 0 : opts.monitor;
  let logBuf = "";
  let attemptLog = ""; // the log of the latest spawn only
  let exited: Promise<void> = Promise.resolve();

  const appendLog = (chunk: Buffer) => {
    const s = chunk.toString("utf8");
    logBuf = (logBuf + s).slice(-LOG_LIMIT);
    attemptLog = (attemptLog + s).slice(-LOG_LIMIT);
    if (log) process.stderr.write(s.replace(/^(?=.)/gm, `[nats:${port}] `));
  };

  /** One attempt to spawn the server with the current ports; resolves when it accepts connections. */
  const spawnOnce = async (): Promise<void> => {
    writeFileSync(
      configFile,
      buildConfig({ port, monitorPort, serverName: opts.serverName ?? `jobchain-test-${port}`, jetstream, storeDir, opts }),
    );
    attemptLog = "";
    const child = spawn(binary, ["-c", configFile, ...(opts.args ?? [])], { stdio: ["ignore", "pipe", "pipe"] });
    state.child = child;
    let exitInfo: string | undefined;
    exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        if (state.child === child) state.child = undefined;
        resolve();
      });
      child.once("error", (err) => {
        exitInfo = `spawn error: ${err.message}`;
        if (state.child === child) state.child = undefined;
        resolve();
      });
    });
    child.stdout!.on("data", appendLog);
    child.stderr!.on("data", appendLog);
    // A forgotten server must not keep this process alive; the exit hooks kill it.
    child.unref();
    (child.stdout as unknown as net.Socket).unref();
    (child.stderr as unknown as net.Socket).unref();
    if (child.pid !== undefined) spawnWatchdog(child.pid, tempRoot);

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`nats-server (${binary}) stopped during start-up (${exitInfo}):\n${logBuf.slice(-4000)}`);
      if (await Promise.race([probe(port), exited.then(() => false)])) return;
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await exited;
        throw new Error(`nats-server did not accept connections on ${HOST}:${port} within ${timeoutMs} ms:\n${logBuf.slice(-4000)}`);
      }
      await sleep(25);
    }
  };

  /** Spawns; on the first start, retries with fresh ports if a chosen free port was taken meanwhile. */
  const launch = async (firstStart: boolean): Promise<void> => {
    const pickPort = firstStart && opts.port === undefined;
    const pickMonitor = firstStart && opts.monitor === true;
    for (let attempt = 1; ; attempt++) {
      if (pickPort) port = await freePort();
      if (pickMonitor) monitorPort = await freePort();
      try {
        await spawnOnce();
        return;
      } catch (err) {
        const addrInUse = /address already in use/i.test(attemptLog);
        // On restart the old socket may linger for a moment; on first start another process may have taken the
        // port we picked (a port the caller asked for is not retried).
        if (!addrInUse || attempt >= 5 || (firstStart && !pickPort)) throw err;
        await sleep(firstStart ? 10 : 200 * attempt);
      }
    }
  };

  let paused = false;
  const stopProcess = async (signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> => {
    const child = state.child;
    if (!child) return;
    child.kill(signal);
    // A paused process acts on SIGTERM only once it runs again.
    if (paused) child.kill("SIGCONT");
    paused = false;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  };

  try {
    await launch(true);
  } catch (err) {
    cleanupAll(state);
    throw err;
  }

  function cleanupAll(s: Live) {
    live.delete(s);
    if (s.tempRoot) rmSync(s.tempRoot, { recursive: true, force: true });
    s.tempRoot = undefined;
  }

  let stopped = false;
  const connectOptions: NatsConnectOptions = { servers: `nats://${HOST}:${port}` };
  if (opts.token !== undefined) connectOptions.token = opts.token;
  if (opts.user !== undefined) {
    connectOptions.user = opts.user;
    connectOptions.pass = opts.password ?? "";
  }

  const handle: NatsServerHandle = {
    url: `nats://${HOST}:${port}`,
    host: HOST,
    port,
    monitorPort,
    monitorUrl: monitorPort === undefined ? undefined : `http://${HOST}:${monitorPort}`,
    storeDir,
    configFile,
    binary,
    version,
    connectOptions,
    get pid() {
      return state.child?.pid;
    },
    get running() {
      return state.child !== undefined;
    },
    get paused() {
      return paused;
    },
    pause() {
      if (!state.child) throw new Error("pause(): the server is not running");
      state.child.kill("SIGSTOP");
      paused = true;
    },
    resume() {
      if (!state.child || !paused) return;
      state.child.kill("SIGCONT");
      paused = false;
    },
    log: () => logBuf,
    async stop(timeout?: number) {
      if (stopped) return;
      stopped = true;
      await stopProcess("SIGTERM", timeout);
      cleanupAll(state);
    },
    async kill() {
      await stopProcess("SIGKILL");
    },
    async restart(r?: { kill?: boolean }) {
      if (stopped) throw new Error("restart() after stop(): start a new server instead");
      await stopProcess(r?.kill ? "SIGKILL" : "SIGTERM");
      await launch(false);
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}

// ---- a JetStream cluster ---------------------------------------------------------------------------------------

export interface StartNatsClusterOptions {
  /** Servers in the cluster (default 3). */
  size?: number;
  /** Cluster name (default "jobchain-test"); the servers are `<name>-0`, `<name>-1`, ... */
  name?: string;
  /** Extra lines appended to every server's config. */
  extraConfig?: string;
  /** Copy the servers' logs to stderr (default: env JOBCHAIN_NATS_LOG=1). */
  log?: boolean;
  /** How long to wait for the cluster to elect its JetStream meta leader, ms (default 60000). */
  readyTimeoutMs?: number;
}

export interface NatsClusterHandle {
  /** The servers, in order; each is a full NatsServerHandle (kill, restart, pause, resume, log, ...). */
  readonly servers: readonly NatsServerHandle[];
  /** Every server's URL, comma separated, as `--nats` and JOBCHAIN_NATS_URL take it. */
  readonly url: string;
  readonly urls: readonly string[];
  /** Every server, for `connect()`. */
  readonly connectOptions: NatsConnectOptions & { servers: string[] };
  readonly name: string;
  /** The server named `serverName` (as JetStream reports leaders), or undefined. */
  server(serverName: string): NatsServerHandle | undefined;
  /**
   * Resolves with the meta leader's name once every running (and not paused) server is JetStream-healthy
   * (`/healthz`: the meta group formed and every stream and consumer it holds is current) and they agree on the
   * leader. Use it after a start, a restart or a resume before the next fault.
   */
  waitHealthy(timeoutMs?: number): Promise<string>;
  /** The server leading `stream` now (undefined while it has no leader), asked of the cluster over NATS. */
  streamLeader(stream: string): Promise<NatsServerHandle | undefined>;
  /** Stops every server and removes their temp dirs. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

async function monitorJson<T>(server: NatsServerHandle, pathAndQuery: string): Promise<{ status: number; body: T } | undefined> {
  if (!server.monitorUrl || !server.running || server.paused) return undefined;
  try {
    const res = await fetch(`${server.monitorUrl}${pathAndQuery}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return undefined;
  }
}

/**
 * Starts `size` nats-servers on loopback as one JetStream cluster (routes between all of them, JetStream with
 * file storage on each, free ports, a temp dir each) and resolves once it has a meta leader and every server is
 * healthy. Each server is killed on exit like a single one.
 */
export async function startNatsCluster(opts: StartNatsClusterOptions = {}): Promise<NatsClusterHandle> {
  const size = opts.size ?? 3;
  const name = opts.name ?? "jobchain-test";
  for (let attempt = 1; ; attempt++) {
    // Ports are picked up front: every server's routes name every other server's cluster port.
    const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort(), monitor: await freePort() })));
    const routes = ports.map((p) => `"nats-route://${HOST}:${p.route}"`).join(", ");
    const started = await Promise.allSettled(
      ports.map((p, i) =>
        startNats({
          port: p.client,
          monitor: p.monitor,
          serverName: `${name}-${i}`,
          log: opts.log,
          extraConfig: [`cluster {`, `  name: ${q(name)}`, `  listen: ${q(`${HOST}:${p.route}`)}`, `  routes: [${routes}]`, `}`, opts.extraConfig ?? ""].join("\n"),
        }),
      ),
    );
    const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await Promise.all(servers.map((s) => s.stop()));
      // Another process may have taken a port picked above before the server bound it.
      if (/address already in use/i.test(String(failed.reason?.message)) && attempt < 5) continue;
      throw failed.reason;
    }
    const cluster = clusterHandle(name, servers);
    try {
      await cluster.waitHealthy(opts.readyTimeoutMs ?? 60_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }
}

function clusterHandle(name: string, servers: NatsServerHandle[]): NatsClusterHandle {
  const urls = servers.map((s) => s.url);
  const handle: NatsClusterHandle = {
    servers,
    urls,
    url: urls.join(","),
    connectOptions: { servers: [...urls] },
    name,
    server: (serverName) => servers.find((_, i) => `${name}-${i}` === serverName),
    async waitHealthy(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "no answer yet";
      for (;;) {
        const up = servers.filter((s) => s.running && !s.paused);
        const health = await Promise.all(up.map((s) => monitorJson<{ status?: string; error?: string }>(s, "/healthz")));
        const jsz = await Promise.all(up.map((s) => monitorJson<Jsz>(s, "/jsz")));
        const leaders = new Set(jsz.map((j) => j?.body.meta_cluster?.leader ?? ""));
        const healthy = health.every((h) => h?.status === 200 && h.body.status === "ok");
        const [leader] = leaders;
        if (up.length > 0 && healthy && leaders.size === 1 && leader) return leader;
        last = `health ${health.map((h) => h?.body.error ?? h?.body.status ?? "no answer").join(" | ")}; meta leaders ${[...leaders].map((l) => l || "none").join(", ")}`;
        if (Date.now() > deadline) {
          throw new Error(`the NATS cluster '${name}' was not healthy within ${timeoutMs} ms (${last}):\n${up.map((s) => s.log().slice(-1500)).join("\n---\n")}`);
        }
        await sleep(100);
      }
    },
    async streamLeader(stream) {
      // Imported here: the single-server harness has no client dependency.
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const up = servers.filter((s) => s.running && !s.paused).map((s) => s.url);
      const nc = await connect({ servers: up, reconnect: false, timeout: 5000 });
      try {
        const info = await (await jetstreamManager(nc, { timeout: 5000 })).streams.info(stream);
        return info.cluster?.leader ? handle.server(info.cluster.leader) : undefined;
      } finally {
        await nc.close();
      }
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}
