// Kubeconfig loading, authentication and TLS. The only module that imports @kubernetes/client-node: it reads
// kubeconfig files and the in-cluster service account (tokens, client certificates, exec and auth-provider
// plugins); every request is made by client.ts with Node's own https.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";
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

function inClusterAvailable(): boolean {
  return !!process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN);
}

/**
 * Loads the configuration like client-go does: `kubeconfig` when given, else $KUBECONFIG (files joined by `:`),
 * else the in-cluster service account when running in a pod, else ~/.kube/config. `context` picks a context
 * other than the current one.
 */
export function loadKubeConfig(options: { kubeconfig?: string; context?: string } = {}): KubeConfigHandle {
  const kc = new KubeConfig();
  let source: string;
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig)) throw new KubeConfigError(`kubeconfig ${options.kubeconfig} does not exist`);
      source = options.kubeconfig;
      kc.loadFromFile(options.kubeconfig);
    } else if (process.env.KUBECONFIG) {
      source = process.env.KUBECONFIG;
      kc.loadFromDefault();
    } else if (inClusterAvailable()) {
      source = "in-cluster";
      kc.loadFromCluster();
    } else {
      const file = path.join(os.homedir(), ".kube", "config");
      if (!existsSync(file)) {
        throw new KubeConfigError(
          `no Kubernetes configuration: pass --kubeconfig, set $KUBECONFIG, or run in a pod with a service account (${file} does not exist either)`,
        );
      }
      source = file;
      kc.loadFromFile(file);
    }
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    throw new KubeConfigError(`cannot load the Kubernetes configuration: ${(e as Error).message}`, { cause: e });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new KubeConfigError(`${source}: no context named ${options.context} (contexts: ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`);
    }
    kc.setCurrentContext(options.context);
  }
  return handleFor(kc, source);
}

function handleFor(kc: KubeConfig, source: string): KubeConfigHandle {
  const contextName = kc.getCurrentContext();
  const context = kc.getContextObject(contextName);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new KubeConfigError(`${source}: context ${JSON.stringify(contextName)} names no cluster with a server URL`);
  }
  const server = cluster.server.replace(/\/+$/, "");
  if (server.startsWith("http:") && !cluster.skipTLSVerify) {
    throw new KubeConfigError(`${source}: cluster ${cluster.name} uses plain HTTP (${server}); set insecure-skip-tls-verify to allow it`);
  }
  let cached: { at: number; headers: Record<string, string> } | undefined;
  let pending: Promise<Record<string, string>> | undefined;
  const evaluate = async (): Promise<Record<string, string>> => {
    // applyToHTTPSOptions runs the user's authenticator (token file, exec plugin, OIDC…); only its headers are used.
    const opts: { headers?: Record<string, string>; auth?: string } = {};
    await kc.applyToHTTPSOptions(opts as never);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return headers;
  };
  // TLS material is static for the life of the process (like client-go without cert rotation); read it once.
  const tls: TlsOptions = {};
  const user = kc.getCurrentUser();
  const readTls = (b: string | undefined, file: string | undefined): Buffer | undefined =>
    b ? Buffer.from(b, "base64") : file ? requireFile(file, source) : undefined;
  const ca = readTls(cluster.caData, cluster.caFile);
  if (ca) tls.ca = ca;
  const cert = readTls(user?.certData, user?.certFile);
  if (cert) tls.cert = cert;
  const key = readTls(user?.keyData, user?.keyFile);
  if (key) tls.key = key;
  if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
  if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
  return {
    server,
    namespace: context?.namespace || "default",
    context: contextName,
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
