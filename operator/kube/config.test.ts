import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KubeConfigError, loadKubeConfig } from "./config.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-kubeconfig-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, cluster: string, user: string, extraContexts = ""): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
${cluster}
users:
- name: u
  user:
${user}
contexts:
- name: main
  context: {cluster: c, user: u, namespace: team-a}
- name: plain
  context: {cluster: c, user: u}
${extraContexts}current-context: main
`,
  );
  return file;
}

describe("loadKubeConfig", () => {
  it("reads the server, the context's namespace, the CA and a bearer token", async () => {
    const ca = Buffer.from("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n");
    const file = kubeconfig("token", `    server: https://10.1.2.3:6443/\n    certificate-authority-data: ${ca.toString("base64")}`, "    token: abc123");
    const cfg = loadKubeConfig({ kubeconfig: file });
    expect(cfg.server).toBe("https://10.1.2.3:6443");
    expect(cfg.namespace).toBe("team-a");
    expect(cfg.context).toBe("main");
    expect(cfg.source).toBe(file);
    expect(Buffer.from(cfg.tls.ca as Buffer).equals(ca)).toBe(true);
    expect(await cfg.authHeaders()).toMatchObject({ Authorization: "Bearer abc123" });
    expect(loadKubeConfig({ kubeconfig: file, context: "plain" }).namespace).toBe("default");
  });

  it("turns a username and password into basic auth, and honours insecure-skip-tls-verify", async () => {
    const file = kubeconfig("basic", "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true", "    username: me\n    password: secret");
    const cfg = loadKubeConfig({ kubeconfig: file });
    expect(cfg.tls.rejectUnauthorized).toBe(false);
    expect((await cfg.authHeaders()).Authorization).toBe(`Basic ${Buffer.from("me:secret").toString("base64")}`);
  });

  it("refuses plain HTTP without insecure-skip-tls-verify, a missing file and an unknown context, naming them", () => {
    const http = kubeconfig("http", "    server: http://127.0.0.1:8080", "    token: t");
    expect(() => loadKubeConfig({ kubeconfig: http })).toThrow(KubeConfigError);
    expect(() => loadKubeConfig({ kubeconfig: http })).toThrow(/plain HTTP.*insecure-skip-tls-verify/);
    expect(() => loadKubeConfig({ kubeconfig: path.join(dir, "nope") })).toThrow(/nope does not exist/);
    const ok = kubeconfig("ok", "    server: https://127.0.0.1:1", "    token: t");
    expect(() => loadKubeConfig({ kubeconfig: ok, context: "other" })).toThrow(/no context named other \(contexts: main, plain\)/);
  });

  it("reads $KUBECONFIG when no file is given", () => {
    const file = kubeconfig("env", "    server: https://192.0.2.1:443", "    token: t");
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file;
    try {
      expect(loadKubeConfig().server).toBe("https://192.0.2.1:443");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });
});
