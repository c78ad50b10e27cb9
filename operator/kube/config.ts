// Kubeconfig loading, authentication and TLS, as client-go does it: kubeconfig files (several in $KUBECONFIG
// merged, the first definition of a name winning), the in-cluster service account, bearer tokens (also from a
// file, re-read as it rotates), client certificates and basic auth are read here; only a user entry with an
// `exec` or `auth-provider` plugin loads @kubernetes/client-node (an optional dependency, and 85 MB of memory
// the operator otherwise does without) to run it. Every request is made by client.ts with Node's own https.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { importOptional } from "../../core/index.ts";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const SERVICE_ACCOUNT_TOKEN = `${SERVICE_ACCOUNT_DIR}/token`;
/** How long one evaluation of the credentials is reused: rotating tokens are re-read at least this often. */
const AUTH_CACHE_MS = 10_000;

export interface TlsOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  rejectUnauthorized?: boolean;
  servername?: string;
}

/** A loaded configuration: where the API server is and how to authenticate to it. */
export interface KubeConfigHandle {
  /** Base URL of the API server, without a trailing slash. */
  readonly server: string;
  /** The context's namespace (`default` when it names none; the pod's namespace in a cluster). */
  readonly namespace: string;
  /** The context's name (`in-cluster` for the service account). */
  readonly context: string;
  /** Where it came from: a file path or `in-cluster`. */
  readonly source: string;
  /** TLS settings for the connection (CA, client certificate, verification). */
  readonly tls: TlsOptions;
  /** Headers that authenticate one request (Authorization, impersonation); re-evaluated as credentials rotate. */
  authHeaders(): Promise<Record<string, string>>;
}

export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

interface ClusterEntry {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
}
interface UserEntry {
  token?: string;
  tokenFile?: string;
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  username?: string;
  password?: string;
  as?: string;
  "as-groups"?: string[];
  exec?: unknown;
  "auth-provider"?: unknown;
}
interface ContextEntry {
  cluster?: string;
  user?: string;
  namespace?: string;
}
/** One kubeconfig after merging: each entry remembers the directory its relative paths are relative to. */
interface Merged {
  current: string | undefined;
  clusters: Map<string, { entry: ClusterEntry; dir: string }>;
  users: Map<string, { entry: UserEntry; dir: string; file: string }>;
  contexts: Map<string, ContextEntry>;
}

function readKubeconfigs(files: string[]): Merged {
  const merged: Merged = { current: undefined, clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    let doc: Record<string, unknown>;
    try {
      doc = (parseYaml(readFileSync(file, "utf8")) ?? {}) as Record<string, unknown>;
    } catch (e) {
      throw new KubeConfigError(`cannot read kubeconfig ${file}: ${(e as Error).message}`, { cause: e });
    }
    const dir = path.dirname(path.resolve(file));
    merged.current ??= (doc["current-context"] as string | undefined) || undefined;
    for (const c of (doc.clusters ?? []) as { name: string; cluster: ClusterEntry }[]) {
      if (!merged.clusters.has(c.name)) merged.clusters.set(c.name, { entry: c.cluster ?? {}, dir });
    }
    for (const u of (doc.users ?? []) as { name: string; user: UserEntry }[]) {
      if (!merged.users.has(u.name)) merged.users.set(u.name, { entry: u.user ?? {}, dir, file });
    }
    for (const c of (doc.contexts ?? []) as { name: string; context: ContextEntry }[]) {
      if (!merged.contexts.has(c.name)) merged.contexts.set(c.name, c.context ?? {});
    }
  }
  return merged;
}

function inClusterAvailable(): boolean {
  return !!process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN);
}

/**
 * Loads the configuration like client-go does: `kubeconfig` when given, else $KUBECONFIG (files joined by `:`),
 * else the in-cluster service account when running in a pod, else ~/.kube/config. `context` picks a context
 * other than the current one.
 */
export function loadKubeConfig(options: { kubeconfig?: string; context?: string } = {}): KubeConfigHandle {
  let files: string[];
  if (options.kubeconfig) {
    if (!existsSync(options.kubeconfig)) throw new KubeConfigError(`kubeconfig ${options.kubeconfig} does not exist`);
    files = [options.kubeconfig];
  } else if (process.env.KUBECONFIG) {
    files = process.env.KUBECONFIG.split(path.delimiter).filter((f) => f && existsSync(f));
    if (files.length === 0) throw new KubeConfigError(`none of the files in $KUBECONFIG exists (${process.env.KUBECONFIG})`);
  } else if (inClusterAvailable()) {
    return inCluster();
  } else {
    const file = path.join(os.homedir(), ".kube", "config");
    if (!existsSync(file)) {
      throw new KubeConfigError(
        `no Kubernetes configuration: pass --kubeconfig, set $KUBECONFIG, or run in a pod with a service account (${file} does not exist either)`,
      );
    }
    files = [file];
  }
  const source = files.join(path.delimiter);
  const kc = readKubeconfigs(files);
  const contextName = options.context ?? kc.current;
  if (options.context && !kc.contexts.has(options.context)) {
    throw new KubeConfigError(`${source}: no context named ${options.context} (contexts: ${[...kc.contexts.keys()].join(", ") || "none"})`);
  }
  const context = contextName === undefined ? undefined : kc.contexts.get(contextName);
  if (!context) throw new KubeConfigError(`${source}: no current context (set current-context, or pass a context)`);
  const cluster = context.cluster === undefined ? undefined : kc.clusters.get(context.cluster);
  if (!cluster?.entry.server) {
    throw new KubeConfigError(`${source}: context ${JSON.stringify(contextName)} names no cluster with a server URL`);
  }
  const server = cluster.entry.server.replace(/\/+$/, "");
  if (server.startsWith("http:") && !cluster.entry["insecure-skip-tls-verify"]) {
    throw new KubeConfigError(`${source}: cluster ${context.cluster} uses plain HTTP (${server}); set insecure-skip-tls-verify to allow it`);
  }
  const user = context.user === undefined ? undefined : kc.users.get(context.user);
  const u = user?.entry ?? {};
  const inDir = (dir: string, f: string) => path.resolve(dir, f);
  // TLS material is static for the life of the process (like client-go without cert rotation); read it once.
  const tls: TlsOptions = {};
  const readTls = (data: string | undefined, file: string | undefined, dir: string): Buffer | undefined =>
    data ? Buffer.from(data, "base64") : file ? requireFile(inDir(dir, file), source) : undefined;
  const ca = readTls(cluster.entry["certificate-authority-data"], cluster.entry["certificate-authority"], cluster.dir);
  if (ca) tls.ca = ca;
  if (user) {
    const cert = readTls(u["client-certificate-data"], u["client-certificate"], user.dir);
    if (cert) tls.cert = cert;
    const key = readTls(u["client-key-data"], u["client-key"], user.dir);
    if (key) tls.key = key;
  }
  if (cluster.entry["insecure-skip-tls-verify"]) tls.rejectUnauthorized = false;
  if (cluster.entry["tls-server-name"]) tls.servername = cluster.entry["tls-server-name"];
  const impersonation: Record<string, string> = {};
  if (u.as) impersonation["Impersonate-User"] = u.as;
  if (u["as-groups"]?.length) impersonation["Impersonate-Group"] = u["as-groups"].join(",");
  let evaluate: () => Promise<Record<string, string>>;
  if (u.exec || u["auth-provider"]) {
    evaluate = pluginCredentials(user!.file, contextName!);
  } else if (u.tokenFile) {
    const file = inDir(user!.dir, u.tokenFile);
    evaluate = async () => ({ Authorization: `Bearer ${requireFile(file, source).toString("utf8").trim()}` });
  } else if (u.token) {
    evaluate = async () => ({ Authorization: `Bearer ${u.token}` });
  } else if (u.username !== undefined) {
    evaluate = async () => ({ Authorization: `Basic ${Buffer.from(`${u.username}:${u.password ?? ""}`).toString("base64")}` });
  } else {
    evaluate = async () => ({});
  }
  return handle(server, context.namespace || "default", contextName!, source, tls, async () => ({ ...(await evaluate()), ...impersonation }));
}

/** The pod's service account: its token is re-read as the kubelet rotates it. */
function inCluster(): KubeConfigHandle {
  const host = process.env.KUBERNETES_SERVICE_HOST!;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? "443";
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const tls: TlsOptions = {};
  if (existsSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`)) tls.ca = requireFile(`${SERVICE_ACCOUNT_DIR}/ca.crt`, "in-cluster");
  let namespace = "default";
  try {
    namespace = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, "utf8").trim() || "default";
  } catch {
    // no namespace file: default
  }
  return handle(server, namespace, "in-cluster", "in-cluster", tls, async () => ({
    Authorization: `Bearer ${requireFile(SERVICE_ACCOUNT_TOKEN, "in-cluster").toString("utf8").trim()}`,
  }));
}

/** Credentials from an exec or auth-provider plugin, run by @kubernetes/client-node. */
function pluginCredentials(file: string, context: string): () => Promise<Record<string, string>> {
  let kc: Promise<{ applyToHTTPSOptions(o: unknown): Promise<void> }> | undefined;
  return async () => {
    kc ??= importOptional("a kubeconfig user with an exec or auth-provider plugin", ["@kubernetes/client-node"], () => import("@kubernetes/client-node")).then((m) => {
      const k = new m.KubeConfig();
      k.loadFromFile(file);
      k.setCurrentContext(context);
      return k;
    });
    const opts: { headers?: Record<string, string>; auth?: string } = {};
    await (await kc).applyToHTTPSOptions(opts);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return headers;
  };
}

function handle(
  server: string,
  namespace: string,
  context: string,
  source: string,
  tls: TlsOptions,
  evaluate: () => Promise<Record<string, string>>,
): KubeConfigHandle {
  let cached: { at: number; headers: Record<string, string> } | undefined;
  let pending: Promise<Record<string, string>> | undefined;
  return {
    server,
    namespace,
    context,
    source,
    tls,
    authHeaders: async () => {
      const now = Date.now();
      if (cached && now - cached.at < AUTH_CACHE_MS) return cached.headers;
      pending ??= evaluate()
        .then((headers) => {
          cached = { at: Date.now(), headers };
          return headers;
        })
        .finally(() => {
          pending = undefined;
        });
      return pending;
    },
  };
}

function requireFile(file: string, source: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new KubeConfigError(`${source}: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}
