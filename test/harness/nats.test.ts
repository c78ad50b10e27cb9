import { existsSync } from "node:fs";
import net from "node:net";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, startNatsCluster, type NatsServerHandle } from "./nats.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function makeWorkQueue(nc: NatsConnection, stream: string, ackWaitMs = 30_000): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
  });
  await jsm.consumers.add(stream, {
    durable_name: "worker",
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
  });
}

describe("nats test harness", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNats({ monitor: true });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("starts a JetStream server with file storage on a loopback port", async () => {
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(nats.running).toBe(true);
    expect(nats.version).toMatch(/^\d+\.\d+\.\d+/);
    const res = await fetch(`${nats.monitorUrl}/jsz`);
    const jsz = (await res.json()) as { config?: { store_dir?: string } };
    expect(jsz.config?.store_dir).toContain(nats.storeDir);
  });

  it("publishes to and consumes from a work-queue stream with explicit acks", async () => {
    const nc = await connect(nats.connectOptions);
    try {
      await makeWorkQueue(nc, "WQ1");
      const js = jetstream(nc);
      for (let i = 0; i < 10; i++) await js.publish(`WQ1.task`, enc.encode(`m${i}`));
      const consumer = await js.consumers.get("WQ1", "worker");
      const msgs = await consumer.consume({ max_messages: 5 });
      const got: string[] = [];
      for await (const m of msgs) {
        got.push(dec.decode(m.data));
        await m.ackAck();
        if (got.length === 10) break;
      }
      expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
      const si = await (await jetstreamManager(nc)).streams.info("WQ1");
      expect(si.state.messages).toBe(0); // work queue: acked messages are removed
    } finally {
      await nc.close();
    }
  });

  for (const mode of ["graceful", "kill"] as const) {
    it(`restart (${mode}) keeps an un-acked message in file storage on the same port`, async () => {
      const stream = mode === "kill" ? "WQKILL" : "WQRESTART";
      const port = nats.port;
      let nc = await connect(nats.connectOptions);
      await makeWorkQueue(nc, stream, 1_000);
      const js = jetstream(nc);
      await js.publish(`${stream}.task`, enc.encode("survivor"));
      const first = await (await js.consumers.get(stream, "worker")).next({ expires: 5_000 });
      expect(first && dec.decode(first.data)).toBe("survivor"); // received, never acked
      await nc.close();

      if (mode === "kill") {
        await nats.kill();
        expect(nats.running).toBe(false);
        expect(existsSync(nats.storeDir)).toBe(true);
        await nats.restart();
      } else {
        const pid = nats.pid;
        await nats.restart();
        expect(nats.pid).not.toBe(pid);
      }
      expect(nats.running).toBe(true);
      expect(nats.port).toBe(port);

      nc = await connect(nats.connectOptions);
      try {
        const again = await (await jetstream(nc).consumers.get(stream, "worker")).next({ expires: 10_000 });
        expect(again && dec.decode(again.data)).toBe("survivor");
        // After a graceful stop the server has written the first delivery; after SIGKILL it may not have, so
        // the redelivery can count as the first. Either way the un-acked message is delivered again.
        expect(again!.info.deliveryCount).toBeGreaterThanOrEqual(mode === "kill" ? 1 : 2);
        await again!.ackAck();
      } finally {
        await nc.close();
      }
    });
  }
});

describe("nats test harness options", () => {
  it("requires a token when one is set, and applies max_payload", async () => {
    const nats = await startNats({ token: "s3cret", maxPayload: 8 * 1024 * 1024, jetstream: false });
    try {
      await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow();
      const nc = await connect(nats.connectOptions);
      expect(nc.info?.max_payload).toBe(8 * 1024 * 1024);
      const sub = nc.subscribe("big", { max: 1 });
      const big = new Uint8Array(5 * 1024 * 1024).fill(7);
      nc.publish("big", big);
      for await (const m of sub) expect(m.data.length).toBe(big.length);
      await nc.close();
    } finally {
      await nats.stop();
    }
  });

  it("requires user and password when set; stop() ends the server and removes its temp dir", async () => {
    const nats = await startNats({ user: "alice", password: "pw" });
    await expect(connect({ servers: nats.url, user: "alice", pass: "wrong", reconnect: false })).rejects.toThrow();
    const nc = await connect(nats.connectOptions);
    await nc.flush();
    await nc.close();
    const pid = nats.pid!;
    await nats.stop();
    expect(nats.running).toBe(false);
    expect(existsSync(nats.storeDir)).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow();
  });
});

describe("nats test harness lifecycle", () => {
  it("disposes with `await using`, and reports a start-up failure with the server log", async () => {
    let dir: string;
    {
      await using nats = await startNats({ jetstream: false });
      dir = nats.configFile;
      expect(existsSync(dir)).toBe(true);
    }
    expect(existsSync(dir)).toBe(false);
    await expect(startNats({ extraConfig: "this is not { valid" })).rejects.toThrow(/nats-server/);
  });

  it("fails clearly when the requested port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startNats({ port, jetstream: false })).rejects.toThrow(/address already in use/i);
    } finally {
      blocker.close();
    }
  });
});

describe("nats test harness: a three-server JetStream cluster", { timeout: 180_000 }, () => {
  it("forms a cluster with a meta leader; a replicated stream survives kill -9 of its leader and a paused server", async () => {
    await using cluster = await startNatsCluster();
    expect(cluster.servers).toHaveLength(3);
    expect(cluster.url.split(",")).toEqual(cluster.servers.map((s) => s.url));
    const leader = await cluster.waitHealthy();
    expect(cluster.server(leader)).toBeDefined();
    const nc = await connect({ ...cluster.connectOptions, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const jsm = await jetstreamManager(nc);
      const si = await jsm.streams.add({ name: "R3", subjects: ["r3.>"], storage: StorageType.File, num_replicas: 3 });
      expect(si.config.num_replicas).toBe(3);
      const js = jetstream(nc);
      for (let i = 0; i < 10; i++) await js.publish("r3.x", enc.encode(`m${i}`));

      const first = (await cluster.streamLeader("R3"))!;
      expect(cluster.servers).toContain(first);
      await first.kill();
      // The two others elect a new leader and take writes; nothing acknowledged is lost.
      let second: NatsServerHandle | undefined;
      for (const deadline = Date.now() + 60_000; !second && Date.now() < deadline; ) {
        second = await cluster.streamLeader("R3").catch(() => undefined);
        if (!second) await new Promise((r) => setTimeout(r, 200));
      }
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
      await js.publish("r3.x", enc.encode("after"), { timeout: 20_000 });
      await first.restart();
      await cluster.waitHealthy();
      // Right after a restart the answer may come from a replica still catching up: wait for the count, which a
      // lost message would never reach.
      const count = async (n: number) => {
        let messages = 0;
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
          messages = (await jsm.streams.info("R3").catch(() => undefined))?.state.messages ?? messages;
          if (messages === n) break;
        }
        return messages;
      };
      expect(await count(11)).toBe(11);

      // A paused server is silent, not gone: the cluster goes on without it, and it catches up once resumed.
      // (Not the one this client is connected to: its requests would wait for the pause to end.)
      const mine = cluster.server(nc.info!.server_name);
      const follower = cluster.servers.find((s) => s !== second && s !== mine)!;
      follower.pause();
      expect(follower.paused).toBe(true);
      await js.publish("r3.x", enc.encode("while paused"), { timeout: 20_000 });
      follower.resume();
      await cluster.waitHealthy();
      expect(await count(12)).toBe(12);
    } finally {
      await nc.close();
    }
  });
});
