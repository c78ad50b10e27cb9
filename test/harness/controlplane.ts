// Test harness: a real Kubernetes control plane — kube-apiserver + etcd, no kubelet, no controllers — on free
// loopback ports in a temporary directory, in the manner of controller-runtime's envtest.
//
//   const cp = await startControlPlane();
//   const kc = new KubeConfig(); kc.loadFromFile(cp.adminKubeconfig);      // system:masters
//   const rc = new KubeConfig(); rc.loadFromFile(cp.restrictedKubeconfig); // no RBAC grants at all
//   ...
//   await cp.stop();   // kills both processes and removes the temp dir
//
// The binaries are built once by `make controlplane` (scripts/controlplane/build.sh) into
// $JOBCHAIN_CACHE_DIR/controlplane/k8s-<version>_etcd-<version>/bin; the pinned versions are in
// scripts/controlplane/versions.env. $JOBCHAIN_CONTROLPLANE_BIN (or envtest's $KUBEBUILDER_ASSETS) may name another
// directory holding `kube-apiserver` and `etcd`. Suites call controlPlaneSkipReason() at collection time and skip
// with that reason when the binaries are missing (e.g. no Go on the machine): never a silent pass.
//
// Authentication is by static bearer tokens (--token-auth-file): an admin user in `system:masters` and a restricted
// user (RESTRICTED_USER, group RESTRICTED_GROUP) that RBAC grants nothing beyond what every authenticated user gets
// (discovery, self reviews). Authorization is RBAC only. The ServiceAccount admission plugin is off (no controller
// manager creates default service accounts); everything else is kube-apiserver's default.
//
// Every control plane started here is killed (and its temp dir removed) when this process exits or gets
// SIGINT/SIGTERM/SIGHUP; a watchdog process also does so if this process dies without running exit handlers
// (SIGKILL). Each server runs in its own process group. `detached: true` (used by `make cluster-up`) opts out of
// all of that: the processes outlive this one until stopControlPlaneByState() or a kill of their groups.
//
// `node: { address }` (used by node.ts, opt-in) prepares the API server for a real node: it binds and advertises on
// that address (pods cannot reach the host's loopback), accepts client certificates signed by its CA (the
// components' per-component certificates), reaches kubelets with a client certificate on their InternalIP,
// authorizes with Node + RBAC (NodeRestriction admission), turns the ServiceAccount admission plugin on and keeps
// the `kubernetes` Service's endpoints with the lease reconciler. Without it nothing changes.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import https from "node:https";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onProcessExit } from "./exit-hooks.ts";

const HOST = "127.0.0.1";
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VERSIONS_FILE = path.join(REPO_ROOT, "scripts/controlplane/versions.env");

/** The restricted test user: authenticated, but granted nothing by RBAC unless a test binds a role to it. */
export const RESTRICTED_USER = "jobchain-restricted";
export const RESTRICTED_GROUP = "jobchain:restricted";
/** The admin test user, member of `system:masters`. */
export const ADMIN_USER = "jobchain-admin";

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
}

export interface StartControlPlaneOptions {
  /** Directory holding `kube-apiserver` and `etcd` (default: see findControlPlaneBinaries()). */
  binDir?: string;
  /** Working directory (certs, tokens, kubeconfigs, etcd data, logs). A fresh temp dir when omitted. */
  dir?: string;
  /** Keep `dir` on stop() (default: false for a temp dir, true for a given dir). */
  keepDir?: boolean;
  /** Extra kube-apiserver flags (`--name=value`), appended after the defaults, so they win. */
  apiserverArgs?: string[];
  /** Extra etcd flags. */
  etcdArgs?: string[];
  /** How long to wait for /readyz, ms (default 60000). */
  startTimeoutMs?: number;
  /** Copy both servers' logs to this process's stderr (default: env JOBCHAIN_CONTROLPLANE_LOG=1). */
  log?: boolean;
  /**
   * Leave the servers running after this process exits: no exit handlers, no watchdog, processes unref'd.
   * The caller stops them with stop() or stopControlPlaneByState(state()). Used by `make cluster-up`.
   */
  detached?: boolean;
  /** Serve a real node (see the header comment): bind and advertise on `address`, a node IP on this host. */
  node?: { address: string };
}

/** What is needed to find and stop a running control plane from another process (see cluster.ts). */
export interface ControlPlaneState {
  server: string;
  dir: string;
  keepDir: boolean;
  kubeconfigPath: string;
  /** Process (= process group) ids of etcd and kube-apiserver. */
  pids: { etcd: number; apiserver: number };
  versions: ControlPlaneVersions;
  startedAt: string;
  /** Set in node mode. */
  node?: { address: string };
}

export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** `http://127.0.0.1:<port>` (etcd client URL; plain HTTP on loopback). */
  readonly etcdUrl: string;
  /** The working directory (temp dir unless `dir` was given). */
  readonly dir: string;
  /**
   * Kubeconfig with two contexts, `jobchain-admin` (current) and `jobchain-restricted`; cluster `jobchain-test`,
   * namespace `default`.
   */
  readonly kubeconfigPath: string;
  /** Kubeconfig with only the admin user (system:masters). */
  readonly adminKubeconfig: string;
  /** Kubeconfig with only the restricted user (RESTRICTED_USER). */
  readonly restrictedKubeconfig: string;
  /** Bearer tokens of the two users. */
  readonly adminToken: string;
  readonly restrictedToken: string;
  /** PEM of the CA that signed the serving certificate (also inlined in the kubeconfigs). */
  readonly caCertPem: string;
  readonly caCertPath: string;
  /** Directory of the CA (ca.crt, ca.key), the serving certificate and the service-account keys. */
  readonly pkiDir: string;
  /** Environment for child processes (kubectl, the operator): `{ KUBECONFIG: adminKubeconfig }`. */
  readonly env: Record<string, string>;
  readonly versions: ControlPlaneVersions;
  /** Milliseconds from the call until /readyz answered ok. */
  readonly startupMs: number;
  readonly pids: { etcd: number; apiserver: number };
  /** Last ~64 KiB of each server's log. */
  log(which: "etcd" | "apiserver"): string;
  state(): ControlPlaneState;
  /** Kills both servers (process groups, SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---- versions and binaries -----------------------------------------------------------------------------------

/** Every `NAME=value` of scripts/controlplane/versions.env, the pins the build scripts source. */
export function pinnedVersions(): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(VERSIONS_FILE, "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(\S*)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) vars[m[1]] = m[2];
  }
  return vars;
}

/** The pinned versions from scripts/controlplane/versions.env (overridable like build.sh does). */
export function controlPlaneVersions(): ControlPlaneVersions {
  const vars = pinnedVersions();
  const kubernetes = process.env.JOBCHAIN_KUBERNETES_VERSION || vars.KUBERNETES_VERSION;
  const etcd = process.env.JOBCHAIN_ETCD_VERSION || vars.ETCD_VERSION;
  if (!kubernetes || !etcd) throw new Error(`${VERSIONS_FILE}: KUBERNETES_VERSION and ETCD_VERSION are required`);
  return { kubernetes, etcd };
}

export function cacheDir(): string {
  return process.env.JOBCHAIN_CACHE_DIR || path.join(os.homedir(), ".cache", "jobchain");
}

/** Where `make controlplane` puts this version's build: `$JOBCHAIN_CACHE_DIR/controlplane/<key>`. */
export function controlPlaneBuildDir(v: ControlPlaneVersions = controlPlaneVersions()): string {
  return path.join(cacheDir(), "controlplane", `k8s-${v.kubernetes}_etcd-${v.etcd}`);
}

/** Whether `file` is a regular file with an execute bit. */
export function isExecutable(file: string): boolean {
  try {
    const st = statSync(file);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function hasBinaries(dir: string): boolean {
  return isExecutable(path.join(dir, "kube-apiserver")) && isExecutable(path.join(dir, "etcd"));
}

export type ControlPlaneBinaries =
  | { available: true; binDir: string; source: string }
  | { available: false; reason: string };

/**
 * Finds `kube-apiserver` and `etcd`: $JOBCHAIN_CONTROLPLANE_BIN, else $KUBEBUILDER_ASSETS, else this version's
 * build by `make controlplane`. When there is none, `reason` says why (the build's UNAVAILABLE marker, e.g. "Go is
 * not installed", or that `make controlplane` has not run).
 */
export function findControlPlaneBinaries(): ControlPlaneBinaries {
  for (const name of ["JOBCHAIN_CONTROLPLANE_BIN", "KUBEBUILDER_ASSETS"] as const) {
    const dir = process.env[name];
    if (!dir) continue;
    if (hasBinaries(dir)) return { available: true, binDir: dir, source: `$${name}` };
    return { available: false, reason: `$${name}=${dir} does not hold executable kube-apiserver and etcd` };
  }
  const root = controlPlaneBuildDir();
  const binDir = path.join(root, "bin");
  if (existsSync(path.join(root, ".built")) && hasBinaries(binDir)) {
    return { available: true, binDir, source: "make controlplane" };
  }
  const marker = path.join(root, "UNAVAILABLE");
  if (existsSync(marker)) {
    return { available: false, reason: `no local control plane: ${readFileSync(marker, "utf8").trim()}` };
  }
  return { available: false, reason: `no local control plane: kube-apiserver/etcd not built in ${root} (run \`make controlplane\`)` };
}

/**
 * Undefined when a control plane can be started here; otherwise the reason, for
 * `describe.skipIf(reason)(\`… — skipped: ${reason}\`, …)` at collection time.
 */
export function controlPlaneSkipReason(): string | undefined {
  const b = findControlPlaneBinaries();
  return b.available ? undefined : b.reason;
}

// ---- ports, certificates, tokens, kubeconfigs ----------------------------------------------------------------

/** `n` distinct ports that were free on the loopback interface at the time of the call. */
export async function freePorts(n: number, host = HOST): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(0, host, () => {
            const a = srv.address();
            resolve(typeof a === "object" && a ? a.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`openssl is required to create the test certificates: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
}

/** CA + serving certificate (EC P-256) for 127.0.0.1/localhost, the in-cluster names and `extraIps`. */
function writeCertificates(certDir: string, extraIps: string[] = []): { caCert: string; serverCert: string; serverKey: string } {
  mkdirSync(certDir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=jobchain-test-ca",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    certDir,
  );
  openssl(["req", "-new", ...ec, "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver"], certDir);
  writeFileSync(
    path.join(certDir, "apiserver.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=IP:127.0.0.1,IP:10.0.0.1,${extraIps.map((ip) => `IP:${ip},`).join("")}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,` +
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
      "",
    ].join("\n"),
  );
  openssl(
    ["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650",
      "-out", "apiserver.crt", "-extfile", "apiserver.ext"],
    certDir,
  );
  // Service-account token signing key pair.
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  writeFileSync(path.join(certDir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  writeFileSync(path.join(certDir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  return {
    caCert: path.join(certDir, "ca.crt"),
    serverCert: path.join(certDir, "apiserver.crt"),
    serverKey: path.join(certDir, "apiserver.key"),
  };
}

/**
 * A certificate signed by the CA in `certDir` (ca.crt/ca.key): `<name>.crt` + `<name>.key`. `cn`/`orgs` are the
 * user name and groups a client certificate authenticates as; `ips`/`dns` the names a serving certificate is for.
 */
export function issueCertificate(
  certDir: string,
  name: string,
  subject: { cn: string; orgs?: string[]; usage: "client" | "server"; ips?: string[]; dns?: string[] },
): { cert: string; key: string } {
  const subj = `${(subject.orgs ?? []).map((o) => `/O=${o}`).join("")}/CN=${subject.cn}`;
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`,
    "-out", `${name}.csr`, "-subj", subj], certDir);
  const sans = [...(subject.ips ?? []).map((ip) => `IP:${ip}`), ...(subject.dns ?? []).map((d) => `DNS:${d}`)];
  writeFileSync(
    path.join(certDir, `${name}.ext`),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      `extendedKeyUsage=${subject.usage === "client" ? "clientAuth" : "serverAuth"}`,
      ...(sans.length ? [`subjectAltName=${sans.join(",")}`] : []),
      "",
    ].join("\n"),
  );
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650",
    "-out", `${name}.crt`, "-extfile", `${name}.ext`], certDir);
  return { cert: path.join(certDir, `${name}.crt`), key: path.join(certDir, `${name}.key`) };
}

/** A kubeconfig whose user authenticates with a client certificate (the node's components). */
export function certKubeconfigYaml(server: string, caPem: string, user: string, cert: { cert: string; key: string }): string {
  return kubeconfigYaml(server, caPem, [{ name: user, cert }]);
}

type KubeconfigUser = { name: string; token: string } | { name: string; cert: { cert: string; key: string } };

function kubeconfigYaml(server: string, caPem: string, users: KubeconfigUser[]): string {
  const ca = Buffer.from(caPem).toString("base64");
  const lines = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: jobchain-test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    "users:",
    ...users.flatMap((u) => [
      `- name: ${u.name}`,
      "  user:",
      ...("token" in u ? [`    token: ${u.token}`] : [`    client-certificate: ${u.cert.cert}`, `    client-key: ${u.cert.key}`]),
    ]),
    "contexts:",
    ...users.flatMap((u) => [
      `- name: ${u.name}`,
      "  context:",
      "    cluster: jobchain-test",
      `    user: ${u.name}`,
      "    namespace: default",
    ]),
    `current-context: ${users[0]?.name ?? ""}`,
    "",
  ];
  return lines.join("\n");
}

// ---- process supervision ------------------------------------------------------------------------------------

const LOG_LIMIT = 64 * 1024;

export function tail(file: string, limit = LOG_LIMIT): string {
  try {
    const s = readFileSync(file, "utf8");
    return s.length > limit ? s.slice(-limit) : s;
  } catch {
    return "";
  }
}

interface Live {
  pgids: number[];
  dir: string | undefined;
}
const live = new Set<Live>();
let hooksInstalled = false;

export function killGroup(pgid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

function cleanupAllSync(): void {
  for (const l of live) {
    for (const g of l.pgids) killGroup(g);
    if (l.dir) rmSync(l.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  onProcessExit(cleanupAllSync);
}

/**
 * A watchdog that outlives a SIGKILL of this process: a shell that reads commands from a pipe. `pid N` adds a
 * process group to kill, `release` makes it exit quietly; EOF (this process died) makes it kill the groups and
 * remove the directory.
 */
function startWatchdog(dir: string | undefined): { add(pgid: number): void; release(): void } {
  const script =
    'pids=(); while read -r cmd arg; do case "$cmd" in pid) pids+=("$arg");; release) exit 0;; esac; done; ' +
    'for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done; if [ -n "$1" ]; then rm -rf -- "$1"; fi';
  const w = spawn("bash", ["-c", script, "controlplane-watchdog", dir ?? ""], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  w.unref();
  const stdin = w.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.unref?.();
  w.on("error", () => {});
  stdin?.on("error", () => {});
  return {
    add: (pgid) => void stdin?.write(`pid ${pgid}\n`),
    release: () => {
      stdin?.end("release\n");
    },
  };
}

export interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

export function startProcess(bin: string, args: string[], logFile: string, opts: { echo: boolean }): Proc {
  const fd = openSync(logFile, "a");
  const child = spawn(bin, args, {
    detached: true, // own process group (setsid), so the whole group can be killed
    stdio: ["ignore", opts.echo ? "inherit" : fd, opts.echo ? "inherit" : fd],
  });
  closeSync(fd);
  const proc: Proc = {
    child,
    exitInfo: undefined,
    exited: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        proc.exitInfo = { code, signal };
        resolve();
      });
      child.once("error", (err) => {
        proc.exitInfo = { code: -1, signal: null };
        writeFileSync(logFile, `spawn ${bin} failed: ${err.message}\n`, { flag: "a" });
        resolve();
      });
    }),
  };
  child.unref();
  return proc;
}

function request(
  url: string,
  opts: { ca?: string; token?: string; timeoutMs?: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.request(
      u,
      {
        method: "GET",
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: opts.timeoutMs ?? 2000,
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitUntil(
  what: string,
  deadline: number,
  probe: () => Promise<boolean>,
  dead: () => string | undefined,
): Promise<void> {
  let lastError = "";
  for (;;) {
    const gone = dead();
    if (gone) throw new Error(`${what}: ${gone}`);
    try {
      if (await probe()) return;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready in time${lastError ? ` (last error: ${lastError})` : ""}`);
    await sleep(50);
  }
}

// ---- start ---------------------------------------------------------------------------------------------------

/** Starts etcd and kube-apiserver and resolves once kube-apiserver's /readyz is ok. */
export async function startControlPlane(opts: StartControlPlaneOptions = {}): Promise<ControlPlane> {
  const t0 = Date.now();
  let binDir = opts.binDir;
  if (!binDir) {
    const found = findControlPlaneBinaries();
    if (!found.available) throw new Error(found.reason);
    binDir = found.binDir;
  }
  const versions = controlPlaneVersions();
  const detached = opts.detached ?? false;
  const echo = opts.log ?? process.env.JOBCHAIN_CONTROLPLANE_LOG === "1";
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), "jobchain-cp-"));
  const keepDir = opts.keepDir ?? opts.dir !== undefined;
  mkdirSync(dir, { recursive: true });

  const liveEntry: Live = { pgids: [], dir: keepDir ? undefined : dir };
  const watchdog = detached ? undefined : startWatchdog(keepDir ? undefined : dir);
  if (!detached) {
    installHooks();
    live.add(liveEntry);
  }
  const procs: Proc[] = [];
  const cleanupOnFailure = async () => {
    for (const p of procs) if (p.child.pid) killGroup(p.child.pid);
    await Promise.all(procs.map(waitExit));
    watchdog?.release();
    live.delete(liveEntry);
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const node = opts.node;
    const host = node?.address ?? HOST;
    const pkiDir = path.join(dir, "pki");
    const certs = writeCertificates(pkiDir, node ? [node.address] : []);
    const kubeletClient = node
      ? issueCertificate(pkiDir, "apiserver-kubelet-client", {
          cn: "kube-apiserver-kubelet-client",
          orgs: ["system:masters"],
          usage: "client",
        })
      : undefined;
    const caCertPem = readFileSync(certs.caCert, "utf8");
    const adminToken = randomBytes(24).toString("hex");
    const restrictedToken = randomBytes(24).toString("hex");
    const tokenFile = path.join(dir, "tokens.csv");
    writeFileSync(
      tokenFile,
      `${adminToken},${ADMIN_USER},uid-admin,"system:masters"\n` +
        `${restrictedToken},${RESTRICTED_USER},uid-restricted,"${RESTRICTED_GROUP}"\n`,
      { mode: 0o600 },
    );

    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    let attempt = 0;
    for (;;) {
      attempt++;
      const [etcdPort, etcdPeerPort] = (await freePorts(2)) as [number, number];
      const [apiPort] = (await freePorts(1, host)) as [number];
      const etcdUrl = `http://${HOST}:${etcdPort}`;
      const server = `https://${host}:${apiPort}`;
      const etcdLog = path.join(dir, "etcd.log");
      const apiLog = path.join(dir, "kube-apiserver.log");
      const etcdDataDir = path.join(dir, "etcd");
      rmSync(etcdDataDir, { recursive: true, force: true });

      const etcd = startProcess(
        path.join(binDir, "etcd"),
        [
          "--name=jobchain",
          `--data-dir=${etcdDataDir}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://${HOST}:${etcdPeerPort}`,
          `--initial-advertise-peer-urls=http://${HOST}:${etcdPeerPort}`,
          `--initial-cluster=jobchain=http://${HOST}:${etcdPeerPort}`,
          "--unsafe-no-fsync=true", // throwaway data: no fsync, much faster writes
          "--log-level=warn",
          ...(opts.etcdArgs ?? []),
        ],
        etcdLog,
        { echo },
      );
      procs.push(etcd);
      if (etcd.child.pid) {
        liveEntry.pgids.push(etcd.child.pid);
        watchdog?.add(etcd.child.pid);
      }
      const etcdDead = () =>
        etcd.exitInfo ? `etcd exited (${JSON.stringify(etcd.exitInfo)}):\n${tail(etcdLog, 4000)}` : undefined;
      try {
        await waitUntil(
          "etcd",
          deadline,
          async () => (await request(`${etcdUrl}/health`, { timeoutMs: 1000 })).status === 200,
          etcdDead,
        );
      } catch (e) {
        if (attempt < 3 && /address already in use/.test(tail(etcdLog))) {
          await cleanupProcs(procs);
          continue;
        }
        throw e;
      }

      const apiserver = startProcess(
        path.join(binDir, "kube-apiserver"),
        [
          `--etcd-servers=${etcdUrl}`,
          `--bind-address=${host}`,
          `--advertise-address=${host}`,
          `--secure-port=${apiPort}`,
          `--cert-dir=${path.join(dir, "pki")}`,
          `--tls-cert-file=${certs.serverCert}`,
          `--tls-private-key-file=${certs.serverKey}`,
          `--token-auth-file=${tokenFile}`,
          node ? "--authorization-mode=Node,RBAC" : "--authorization-mode=RBAC",
          "--anonymous-auth=false",
          `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
          `--service-account-key-file=${path.join(dir, "pki", "sa.pub")}`,
          `--service-account-signing-key-file=${path.join(dir, "pki", "sa.key")}`,
          "--service-cluster-ip-range=10.0.0.0/24",
          ...(node && kubeletClient
            ? [
                "--enable-admission-plugins=NodeRestriction",
                `--client-ca-file=${certs.caCert}`,
                `--kubelet-client-certificate=${kubeletClient.cert}`,
                `--kubelet-client-key=${kubeletClient.key}`,
                `--kubelet-certificate-authority=${certs.caCert}`,
                "--kubelet-preferred-address-types=InternalIP",
                "--endpoint-reconciler-type=lease",
              ]
            : ["--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none"]),
          "--allow-privileged=true",
          "--profiling=false",
          ...(opts.apiserverArgs ?? []),
        ],
        apiLog,
        { echo },
      );
      procs.push(apiserver);
      if (apiserver.child.pid) {
        liveEntry.pgids.push(apiserver.child.pid);
        watchdog?.add(apiserver.child.pid);
      }
      const apiDead = () =>
        etcdDead() ??
        (apiserver.exitInfo
          ? `kube-apiserver exited (${JSON.stringify(apiserver.exitInfo)}):\n${tail(apiLog, 4000)}`
          : undefined);
      try {
        await waitUntil(
          "kube-apiserver",
          deadline,
          async () => (await request(`${server}/readyz`, { ca: caCertPem, token: adminToken })).status === 200,
          apiDead,
        );
      } catch (e) {
        if (attempt < 3 && /address already in use/.test(tail(apiLog) + tail(etcdLog))) {
          await cleanupProcs(procs);
          continue;
        }
        throw e;
      }

      // Kubeconfigs.
      const admin: KubeconfigUser = { name: ADMIN_USER, token: adminToken };
      const restricted: KubeconfigUser = { name: RESTRICTED_USER, token: restrictedToken };
      const kubeconfigPath = path.join(dir, "kubeconfig");
      const adminKubeconfig = path.join(dir, "admin.kubeconfig");
      const restrictedKubeconfig = path.join(dir, "restricted.kubeconfig");
      writeFileSync(kubeconfigPath, kubeconfigYaml(server, caCertPem, [admin, restricted]), { mode: 0o600 });
      writeFileSync(adminKubeconfig, kubeconfigYaml(server, caCertPem, [admin]), { mode: 0o600 });
      writeFileSync(restrictedKubeconfig, kubeconfigYaml(server, caCertPem, [restricted]), { mode: 0o600 });

      const pids = { etcd: etcd.child.pid ?? 0, apiserver: apiserver.child.pid ?? 0 };
      const startupMs = Date.now() - t0;
      let stopped: Promise<void> | undefined;
      const stop = () =>
        (stopped ??= (async () => {
          killGroup(pids.apiserver);
          killGroup(pids.etcd);
          await Promise.all([waitExit(apiserver), waitExit(etcd)]);
          watchdog?.release();
          live.delete(liveEntry);
          if (!keepDir) rmSync(dir, { recursive: true, force: true });
        })());
      const cp: ControlPlane = {
        server,
        etcdUrl,
        dir,
        kubeconfigPath,
        adminKubeconfig,
        restrictedKubeconfig,
        adminToken,
        restrictedToken,
        caCertPem,
        caCertPath: certs.caCert,
        pkiDir,
        env: { KUBECONFIG: adminKubeconfig },
        versions,
        startupMs,
        pids,
        log: (which) => tail(which === "etcd" ? etcdLog : apiLog),
        state: () => ({
          server,
          dir,
          keepDir,
          kubeconfigPath,
          pids,
          versions,
          startedAt: new Date(t0).toISOString(),
          ...(node ? { node } : {}),
        }),
        stop,
        [Symbol.asyncDispose]: stop,
      };
      return cp;
    }
  } catch (e) {
    await cleanupOnFailure();
    throw e;
  }
}

/**
 * Compacts etcd's history up to its current revision (the etcd v3 JSON gateway: range for the revision, then
 * compaction), so a watch from an older resourceVersion gets 410 Gone where the API server reads etcd directly
 * (resources without a watch cache). Returns the revision compacted to.
 */
export async function compactEtcd(cp: Pick<ControlPlane, "etcdUrl">): Promise<number> {
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${cp.etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  // Any key will do: the response header carries the store's current revision.
  const range = await post("/v3/kv/range", { key: Buffer.from("/").toString("base64"), limit: 1 });
  const revision = Number((range.header as { revision?: string } | undefined)?.revision);
  if (!Number.isFinite(revision) || revision <= 0) throw new Error(`etcd: no revision in ${JSON.stringify(range)}`);
  await post("/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}

/** Waits for a (killed) process to exit, keeping the event loop alive meanwhile (the child is unref'd). */
export async function waitExit(p: Proc): Promise<void> {
  if (p.exitInfo) return;
  p.child.ref();
  await p.exited;
}

async function cleanupProcs(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.pid) killGroup(p.child.pid);
  await Promise.all(procs.map(waitExit));
  procs.length = 0;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the processes of a (detached) control plane are still running. */
export function controlPlaneAlive(state: ControlPlaneState): boolean {
  return alive(state.pids.etcd) && alive(state.pids.apiserver);
}

/** Checks /readyz of a running control plane (e.g. one started by `make cluster-up`). */
export async function controlPlaneReady(state: ControlPlaneState): Promise<boolean> {
  try {
    const kc = readFileSync(state.kubeconfigPath, "utf8");
    const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(kc)?.[1] ?? "", "base64").toString();
    const token = /token: (\S+)/.exec(kc)?.[1];
    return (await request(`${state.server}/readyz`, { ca, ...(token ? { token } : {}) })).status === 200;
  } catch {
    return false;
  }
}

/** Stops a control plane from its state (another process started it detached): kills both groups, removes the dir. */
export async function stopControlPlaneByState(state: ControlPlaneState, timeoutMs = 10_000): Promise<void> {
  for (const pid of [state.pids.apiserver, state.pids.etcd]) killGroup(pid);
  const deadline = Date.now() + timeoutMs;
  while ((alive(state.pids.apiserver) || alive(state.pids.etcd)) && Date.now() < deadline) await sleep(50);
  if (!state.keepDir) rmSync(state.dir, { recursive: true, force: true });
}
