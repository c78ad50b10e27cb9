// A TCP proxy in front of kube-apiserver for fault injection: TLS passes through untouched (the serving
// certificate is for 127.0.0.1), so a client pointed at the proxy talks to the real server. Faults:
//   cut()         — destroys every connection and refuses new ones until restore()
//   blackhole()   — the connections open now stay open but everything the server sends on them is dropped
//                   (a silent, half-dead watch); new connections work normally
import net from "node:net";
import { readFileSync, writeFileSync } from "node:fs";

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  cut(): void;
  restore(): void;
  blackhole(): void;
  /** A copy of `kubeconfigPath` whose server is this proxy, written to `outPath`. */
  kubeconfig(kubeconfigPath: string, outPath: string): string;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  let refusing = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream, silent: false };
    pairs.add(pair);
    client.on("data", (d) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!pair.silent) client.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      refusing = true;
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
    },
    restore() {
      refusing = false;
    },
    blackhole() {
      for (const p of pairs) p.silent = true;
    },
    kubeconfig(kubeconfigPath, outPath) {
      const text = readFileSync(kubeconfigPath, "utf8").replace(/server: https:\/\/127\.0\.0\.1:\d+/g, `server: https://127.0.0.1:${port}`);
      writeFileSync(outPath, text, { mode: 0o600 });
      return outPath;
    },
    close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
