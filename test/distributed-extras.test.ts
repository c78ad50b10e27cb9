// Distributed features beyond the happy path: credentials, pools, one trace across runners, shared rate limits.
import { execSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { operatorSetup } from "./helpers/jwt.ts";
import { startNats } from "./harness/nats.ts";
import { cli } from "./helpers/cli.ts";
import { mathConfig } from "./helpers/graphs.ts";
import { startRunner, type Proc } from "./helpers/procs.ts";
import { until } from "./helpers/until.ts";

let config: { dir: string; cleanup: () => void };
let procs: Proc[] = [];

beforeAll(() => {
  config = mathConfig({
    "limited.yaml": `
jobs:
  limited: {type: Echo, rateLimit: {max: 3, per: 3600, key: shared-api}}
graphs:
  limited:
    limited: {}
`,
    "pooled.yaml": `
jobs:
  a: {type: Add, properties: {k: 1}}
  b: {type: Add, properties: {k: 10}}
  c: {type: Add, properties: {k: 100}}
graphs:
  pooled:
    a: {next: [b]}
    b: {next: [c]}
    c: {}
pools:
  pooled:
    front: [a, b]
`,
  });
});
afterAll(() => config?.cleanup());
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  procs = [];
});

async function runner(configPath: string, args: string[], url: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = await startRunner(configPath, args, url, env);
  procs.push(p);
  return p;
}

describe("distributed extras", { timeout: 120_000 }, () => {
  it("connects with a token or user and password, from flags or JOBCHAIN_NATS_* variables", async () => {
    await using secured = await startNats({ token: "s3cret" });
    const noAuth = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", secured.url]);
    expect(noAuth.code).toBe(2);
    expect(noAuth.stderr).toMatch(/cannot connect to NATS/);
    await runner(config.dir, ["--graph", "linear", "--nats-token", "s3cret"], secured.url);
    const ok = await cli(["submit", "--graph", "linear", "--input", '{"v":1}'], {
      env: { JOBCHAIN_NATS_URL: secured.url, JOBCHAIN_NATS_TOKEN: "s3cret" },
    });
    expect({ code: ok.code, stderr: ok.stderr, results: ok.lines.map((l) => l.result) }).toEqual({ code: 0, stderr: "", results: [{ v: 112 }] });

    await using userPass = await startNats({ user: "app", password: "pw" });
    await runner(config.dir, ["--graph", "linear", "--nats-user", "app", "--nats-password", "pw"], userPass.url);
    const up = await cli(["submit", "--graph", "linear", "--input", '{"v":2}', "--nats", userPass.url, "--nats-user", "app", "--nats-password", "pw"]);
    expect({ stderr: up.stderr, results: up.lines.map((l) => l.result) }).toEqual({ stderr: "", results: [{ v: 113 }] });
  });

  it("connects with an nkey seed file and over TLS with a CA file", async () => {
    const { createUser } = await import("@nats-io/nkeys");
    const user = createUser();
    const seedFile = path.join(config.dir, "user.nk");
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()));
    await using nk = await startNats({ extraConfig: `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }` });
    await runner(config.dir, ["--graph", "linear", "--nats-nkey", seedFile], nk.url);
    const r = await cli(["submit", "--graph", "linear", "--input", '{"v":3}', "--nats", nk.url, "--nats-nkey", seedFile]);
    expect({ stderr: r.stderr, results: r.lines.map((l) => l.result) }).toEqual({ stderr: "", results: [{ v: 114 }] });
    const denied = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", nk.url]);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/cannot connect to NATS.*\n.*hint: pass the server's credentials/);

    // A CA and a server certificate for 127.0.0.1, made with openssl.
    const d = config.dir;
    const sh = (cmd: string) => execSync(cmd, { cwd: d, stdio: "pipe" });
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=jobchain-test-ca");
    sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1");
    // nats.js checks the name 'localhost' when it connects to a loopback IP.
    writeFileSync(path.join(d, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext");
    await using tls = await startNats({ extraConfig: `tls { cert_file: "${d}/server.pem"\n key_file: "${d}/server.key" }` });
    const tlsArgs = ["--nats-tls-ca", path.join(d, "ca.pem")];
    await runner(config.dir, ["--graph", "linear", ...tlsArgs], tls.url.replace("nats://", "tls://"));
    const t = await cli(["submit", "--graph", "linear", "--input", '{"v":4}', "--nats", tls.url.replace("nats://", "tls://"), ...tlsArgs]);
    expect({ stderr: t.stderr, results: t.lines.map((l) => l.result) }).toEqual({ stderr: "", results: [{ v: 115 }] });
  });

  it("connects with a .creds file (JWT) to a server in operator mode, from the flag or JOBCHAIN_NATS_CREDS", async () => {
    const setup = operatorSetup();
    const creds = path.join(config.dir, "runner.creds");
    const foreign = path.join(config.dir, "foreign.creds");
    writeFileSync(creds, setup.creds, { mode: 0o600 });
    writeFileSync(foreign, setup.foreignCreds, { mode: 0o600 });
    await using op = await startNats({ extraConfig: setup.serverConfig });
    await runner(config.dir, ["--graph", "linear", "--nats-creds", creds], op.url);
    const r = await cli(["submit", "--graph", "linear", "--input", '{"v":5}', "--nats", op.url], { env: { JOBCHAIN_NATS_CREDS: creds } });
    expect({ stderr: r.stderr, results: r.lines.map((l) => l.result) }).toEqual({ stderr: "", results: [{ v: 116 }] });
    for (const args of [[], ["--nats-creds", foreign]]) {
      const denied = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", op.url, ...args]);
      expect(denied.code).toBe(2);
      expect(denied.stderr).toMatch(/cannot connect to NATS/);
      expect(denied.stderr).not.toMatch(/\n\s+at /);
    }
    const missing = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", op.url, "--nats-creds", path.join(config.dir, "nope.creds")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the credentials file \(--nats-creds\) '.*nope\.creds': no such file\n  hint: check the path/);
  });

  it("serves a pool: its nodes run in one process, the rest elsewhere", async () => {
    await using nats = await startNats();
    const file = path.join(config.dir, "pooled.yaml");
    const front = await runner(file, ["--pool", "front", "--metrics-port", "0"], nats.url);
    await runner(file, ["--pool", "default"], nats.url);
    const r = await cli(["submit", "--graph", "pooled", "--input", '{"id":"p1","v":1}', "--input", '{"id":"p2","v":2}', "--nats", nats.url]);
    expect(r.lines.map((l) => [l.id, l.result]).sort()).toEqual([["p1", { v: 112 }], ["p2", { v: 113 }]]);
    // In the front pool a and b ran in memory: only a's consumer received messages, b's none.
    const port = Number(/metrics on :(\d+)/.exec(front.stderr())![1]);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toContain('jobchain_node_processed_total{graph="pooled",node="a"} 2');
    expect(text).not.toContain('node="b"');
    const bad = await cli(["runner", file, "--pool", "nope", "--nats", nats.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown pool 'nope'.*\n.*pools: front, default/);
  });

  it("records one trace per task across the client and every runner", async () => {
    await using nats = await startNats();
    const otConfig = (name: string) => {
      const f = path.join(config.dir, `ot-${name}.yaml`);
      writeFileSync(f, `exporter: file\nbatch_processor: {schedule_delay_millis: 100}\nfile_exporter: {path: ${path.join(config.dir, `spans-${name}.jsonl`)}}\n`);
      return { JOBCHAIN_OT_CONFIG: f };
    };
    const rs = [];
    for (const n of ["a", "b", "c"]) rs.push(await runner(config.dir, ["--graph", "linear", "--nodes", n], nats.url, otConfig(n)));
    const r = await cli(["submit", "--graph", "linear", "--input", '{"id":"tr1","v":1}', "--input", '{"id":"tr2","v":2}', "--nats", nats.url], { env: otConfig("client") });
    expect(r.code).toBe(0);
    for (const p of rs) expect(await p.kill("SIGTERM")).toBe(0);
    const spans = ["client", "a", "b", "c"].flatMap((n) =>
      readFileSync(path.join(config.dir, `spans-${n}.jsonl`), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => ({ ...(JSON.parse(l) as { name: string; context: { trace_id: string }; attributes: Record<string, string> }), proc: n })),
    );
    for (const id of ["tr1", "tr2"]) {
      const mine = spans.filter((s) => s.attributes["jobchain.task_id"] === id);
      expect(new Set(mine.map((s) => s.context.trace_id)).size).toBe(1);
      expect(mine.map((s) => `${s.proc}:${s.name}`).sort()).toEqual([
        "a:job a",
        "a:task linear",
        "b:job b",
        "b:task linear",
        "c:job c",
        "c:task linear",
        "client:submit linear",
      ]);
    }
    const traces = new Set(spans.map((s) => s.context.trace_id));
    expect(traces.size).toBe(2);
  });

  it("keeps a job that runs longer than the ack wait from being delivered again (working() heartbeats)", async () => {
    await using nats = await startNats();
    // Two replicas, an ack wait of 2 s and a job of 5 s: without heartbeats the message would come back (to
    // either replica) every 2 s while the job still runs.
    const replicas = [];
    for (let i = 0; i < 2; i++) replicas.push(await runner(config.dir, ["--graph", "single", "--ack-wait", "2", "--metrics-port", "0"], nats.url));
    const got = await cli(["submit", "--graph", "single", "--input", '{"id":"slow","v":1,"sleep_ms":5000}', "--nats", nats.url]);
    expect(got.lines).toMatchObject([{ id: "slow", status: "succeeded", result: { v: 2 } }]);
    let runs = 0;
    for (const r of replicas) {
      const port = Number(/metrics on :(\d+)/.exec(r.stderr())![1]);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      runs += Number(/^jobchain_node_processed_total\{graph="single",node="a"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      expect(text).not.toMatch(/^jobchain_node_handed_back_total\{graph="single",node="a"\} [1-9]/m);
    }
    expect(runs).toBe(1);
  });

  it("removes malformed messages on a node's subject at first delivery and keeps serving", async () => {
    await using nats = await startNats();
    const r = await runner(config.dir, ["--graph", "linear"], nats.url);
    const nc = await connect(nats.connectOptions);
    const js = jetstream(nc);
    const bodies = [
      "garbage",
      "{}",
      "null",
      "[1,2]",
      '{"v":1,"batch":[1]}',
      JSON.stringify({ v: 1, id: "x", graph: "another", task: {}, inputs: {}, submitted: 1 }),
    ];
    for (const b of bodies) await js.publish("jc.linear.-.node.a", b);
    const got = await cli(["submit", "--graph", "linear", "--input", '{"id":"ok","v":1}', "--nats", nats.url]);
    expect(got.lines).toMatchObject([{ id: "ok", status: "succeeded", result: { v: 112 } }]);
    const jsm = await jetstreamManager(nc);
    await until(async () => (await jsm.streams.info("JC_linear")).state.messages === 0, 30_000, "the work stream to empty");
    expect((await jsm.consumers.info("JC_linear", "node_a")).num_redelivered).toBe(0);
    expect(r.stderr().match(/malformed message removed/g)).toHaveLength(bodies.length);
    await nc.close();
  });

  it("holds a rate limit across runner replicas", async () => {
    await using nats = await startNats();
    const file = path.join(config.dir, "limited.yaml");
    await runner(file, [], nats.url);
    await runner(file, [], nats.url);
    const tasks = Array.from({ length: 6 }, (_, i) => `{"id":"r${i}"}`);
    const sub = await cli(["submit", "--graph", "limited", "--no-wait", "--nats", nats.url, ...tasks.flatMap((t) => ["--input", t])]);
    expect(sub.lines).toHaveLength(6);
    // Three tokens an hour between both replicas: three tasks finish, three wait.
    const got = await cli(["submit", "--graph", "limited", "--nats", nats.url, "--timeout", "4", ...tasks.flatMap((t) => ["--input", t])]);
    const done = got.lines.filter((l) => l.status === "succeeded");
    expect(done).toHaveLength(3);
    expect(got.lines.filter((l) => l.status === "failed").every((l) => /no result within 4s/.test((l.error as { message: string }).message))).toBe(true);
  });
});
