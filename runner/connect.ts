// Connection options from flags and environment: URL, credentials (user/password, token, creds file, nkey seed)
// and TLS. JOBCHAIN_NATS_URL is the default server; credentials come from files or the environment so that
// Kubernetes can mount them from Secrets.
import { accessSync, constants, readFileSync } from "node:fs";
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";

export interface NatsOptions {
  /** Server URL(s), comma separated. Default: $JOBCHAIN_NATS_URL or nats://127.0.0.1:4222. */
  url?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** Path of a .creds file (JWT + nkey seed). */
  credsFile?: string | undefined;
  /** Path of a file holding an nkey seed. */
  nkeyFile?: string | undefined;
  /** TLS: CA file, client cert and key files. */
  tlsCa?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** Connection name shown in server monitoring. */
  name?: string | undefined;
  /** Keep trying when the server cannot be reached at start (runners); otherwise fail at once. */
  waitForServer?: boolean | undefined;
}

/** Options from the environment: JOBCHAIN_NATS_URL, _USER, _PASSWORD, _TOKEN, _CREDS, _NKEY, _TLS_CA, _TLS_CERT, _TLS_KEY. */
export function natsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsOptions {
  return {
    url: env.JOBCHAIN_NATS_URL,
    user: env.JOBCHAIN_NATS_USER,
    password: env.JOBCHAIN_NATS_PASSWORD,
    token: env.JOBCHAIN_NATS_TOKEN,
    credsFile: env.JOBCHAIN_NATS_CREDS,
    nkeyFile: env.JOBCHAIN_NATS_NKEY,
    tlsCa: env.JOBCHAIN_NATS_TLS_CA,
    tlsCert: env.JOBCHAIN_NATS_TLS_CERT,
    tlsKey: env.JOBCHAIN_NATS_TLS_KEY,
  };
}

/** A connection setting is unusable: a credentials or TLS file that cannot be read, or a malformed server URL. */
export class NatsSettingError extends Error {
  override readonly name = "NatsSettingError";
  /** What the user can do about it. */
  readonly hint: string;
  constructor(message: string, hint: string, cause?: unknown) {
    super(message, { cause });
    this.hint = hint;
  }

  static unreadable(what: string, file: string, cause: unknown): NatsSettingError {
    const reason = (cause as NodeJS.ErrnoException)?.code === "ENOENT" ? "no such file" : ((cause as Error)?.message ?? String(cause));
    return new NatsSettingError(
      `cannot read the ${what} '${file}': ${reason}`,
      "check the path (the same setting can come from JOBCHAIN_NATS_* variables, e.g. a mounted Secret)",
      cause,
    );
  }
}

/** The server URL(s) a connection uses: the given ones, else $JOBCHAIN_NATS_URL, else the local default. */
export function natsUrl(url?: string | undefined): string {
  return url ?? process.env.JOBCHAIN_NATS_URL ?? "nats://127.0.0.1:4222";
}

/** Server URLs as nats.js takes them: `host[:port]` or with a `nats://` or `tls://` scheme. */
function serverUrls(value: string): string[] {
  const servers = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = servers.find((s) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s) && !/^(nats|tls):\/\//i.test(s));
  if (servers.length === 0 || bad !== undefined) {
    throw new NatsSettingError(
      servers.length === 0 ? "no NATS server URL given" : `unsupported NATS server URL '${bad}'`,
      "use nats://HOST:PORT or tls://HOST:PORT (several separated by commas) in --nats or JOBCHAIN_NATS_URL",
    );
  }
  return servers;
}

function readFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw NatsSettingError.unreadable(what, file, err);
  }
}

function checkReadable(what: string, file: string | undefined): void {
  if (!file) return;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw NatsSettingError.unreadable(what, file, err);
  }
}

export function connectionOptions(o: NatsOptions): ConnectionOptions {
  const servers = serverUrls(natsUrl(o.url));
  const opts: ConnectionOptions = {
    servers,
    name: o.name,
    // Keep trying through a server restart: work in flight is safe in JetStream and resumes when it is back.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A server that stalls (a paused process, a cut-off machine) keeps its sockets open: only unanswered pings
    // tell. nats.js' defaults (2 min, 2 pings) leave a client on it for up to 6 min; this moves it to another
    // server of a cluster after about 30 s.
    pingInterval: 10_000,
    maxPingOut: 3,
    waitOnFirstConnect: o.waitForServer ?? false,
    timeout: 10_000,
    // Async stack traces cost an Error with a captured stack on every publish: half the client's publish path.
    noAsyncTraces: true,
  };
  if (o.user !== undefined) {
    opts.user = o.user;
    opts.pass = o.password;
  }
  if (o.token !== undefined) opts.token = o.token;
  if (o.credsFile) opts.authenticator = credsAuthenticator(readFile("credentials file (--nats-creds)", o.credsFile));
  else if (o.nkeyFile) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFile("nkey seed file (--nats-nkey)", o.nkeyFile).toString("utf8").trim()));
  checkReadable("TLS CA file (--nats-tls-ca)", o.tlsCa);
  checkReadable("TLS certificate file (--nats-tls-cert)", o.tlsCert);
  checkReadable("TLS key file (--nats-tls-key)", o.tlsKey);
  if (o.tlsCa || o.tlsCert) {
    opts.tls = {
      ...(o.tlsCa ? { caFile: o.tlsCa } : {}),
      ...(o.tlsCert ? { certFile: o.tlsCert } : {}),
      ...(o.tlsKey ? { keyFile: o.tlsKey } : {}),
    };
  }
  return opts;
}

/** Connects with flags over environment defaults. */
export function connectNats(o: NatsOptions = {}): Promise<NatsConnection> {
  const env = natsOptionsFromEnv();
  const merged: NatsOptions = { ...env };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  return connect(connectionOptions(merged));
}
