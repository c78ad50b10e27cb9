// One NATS connection (and one client) per server a JobGraph names: the operator's own by default, or the
// `spec.nats` server with credentials from the Secret it references (read through the API, never copied into
// a ConfigMap, an Event or a status).
import type { NatsConnection } from "@nats-io/transport-node";
import { JobChainClient, connectNats, type NatsOptions } from "../../runner/index.ts";

export interface NatsTarget {
  url?: string | undefined;
  secretRef?: { name: string } | undefined;
}

export interface Connection {
  nc: NatsConnection;
  client: JobChainClient;
}

/** Reads a Secret's data (base64 values decoded); undefined when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

export class NatsSecretError extends Error {
  override readonly name = "NatsSecretError";
}

export class Connections {
  private readonly byKey = new Map<string, Promise<Connection>>();
  private readonly defaults: NatsOptions & { url: string };
  private readonly readSecret: SecretReader;

  constructor(defaults: NatsOptions & { url: string }, readSecret: SecretReader) {
    this.defaults = defaults;
    this.readSecret = readSecret;
  }

  /** The connection for a JobGraph's `spec.nats` (the operator's default when absent). */
  get(namespace: string, target: NatsTarget | undefined): Promise<Connection> {
    const url = target?.url ?? this.defaults.url;
    const secret = target?.secretRef?.name;
    const key = `${url}|${secret ? `${namespace}/${secret}` : ""}`;
    let c = this.byKey.get(key);
    if (!c) {
      c = this.open(namespace, url, secret);
      c.catch(() => this.byKey.delete(key));
      this.byKey.set(key, c);
    }
    return c;
  }

  private async open(namespace: string, url: string, secret: string | undefined): Promise<Connection> {
    let options: NatsOptions = { ...this.defaults, url, name: "jobchain-operator", waitForServer: false };
    if (secret) {
      const data = await this.readSecret(namespace, secret);
      if (!data) throw new NatsSecretError(`Secret '${secret}' (spec.nats.secretRef) does not exist in namespace '${namespace}'`);
      options = { url, name: "jobchain-operator", token: data.token, user: data.user, password: data.password };
    }
    const nc = await connectNats(options);
    return { nc, client: new JobChainClient({ nc }) };
  }

  async close(): Promise<void> {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    for (const c of all) {
      try {
        const { nc, client } = await c;
        await client.close();
        await nc.drain();
      } catch {
        // never connected, or already gone
      }
    }
  }
}
