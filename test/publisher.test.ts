// The pipelined JetStream publisher against a real nats-server: what it resolves and rejects with must match
// what the server did (stored, duplicate, refused, unreachable), because runners ack their input on it.
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamPublisher, PublishRejectedError, PublishUnconfirmedError } from "../runner/publisher.ts";
import { startNats, type NatsServerHandle } from "./harness/nats.ts";

const enc = new TextEncoder();
let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect(nats.connectOptions);
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "P", subjects: ["p.>"], storage: StorageType.File, duplicate_window: nanos(60_000) });
  await jsm.streams.add({
    name: "ONE",
    subjects: ["one.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
  });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

describe("JetStreamPublisher", () => {
  it("resolves each of many concurrent publishes with the sequence the stream stored it at", async () => {
    const p = new JetStreamPublisher(nc);
    const acks = await Promise.all(Array.from({ length: 2000 }, (_, i) => p.publish(`p.many.${i}`, enc.encode(String(i)))));
    expect(new Set(acks.map((a) => a.seq)).size).toBe(2000);
    expect(acks.every((a) => a.stream === "P" && !a.duplicate)).toBe(true);
    for (const i of [0, 999, 1999]) {
      const m = await jsm.streams.getMessage("P", { seq: acks[i]!.seq });
      expect(new TextDecoder().decode(m!.data)).toBe(String(i));
      expect(m!.subject).toBe(`p.many.${i}`);
    }
    expect(p.inFlight).toBe(0);
  });

  it("recognises a repeated message id as a duplicate and stores it once", async () => {
    const p = new JetStreamPublisher(nc);
    const before = (await jsm.streams.info("P")).state.messages;
    const first = await p.publish("p.dup", enc.encode("x"), { msgId: "same" });
    const again = await p.publish("p.dup", enc.encode("y"), { msgId: "same" });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ stream: "P", seq: first.seq, duplicate: true });
    expect((await jsm.streams.info("P")).state.messages).toBe(before + 1);
  });

  it("rejects with the server's error code when the stream refuses the message", async () => {
    const p = new JetStreamPublisher(nc);
    await p.publish("one.task-1", enc.encode("first"));
    const err = await p.publish("one.task-1", enc.encode("second")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishRejectedError);
    expect(err).toMatchObject({ errCode: 10077, subject: "one.task-1" });
    expect((err as Error).message).toMatch(/maximum messages per subject/);
  });

  it("rejects at once when no stream captures the subject", async () => {
    const p = new JetStreamPublisher(nc, { timeoutMs: 60_000 });
    const t0 = Date.now();
    const err = await p.publish("nostream.x", enc.encode("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishUnconfirmedError);
    expect((err as Error).message).toMatch(/no stream captures this subject/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it("rejects publishes that get no acknowledgement in time, and everything pending when the connection closes", async () => {
    const own = await connect({ ...nats.connectOptions, reconnect: false });
    // A subscriber that swallows requests stands in for a stream that never answers.
    const mute = await connect(nats.connectOptions);
    mute.subscribe("mute.>", { callback: () => undefined });
    await mute.flush();
    const p = new JetStreamPublisher(own, { timeoutMs: 300 });
    const err = await p.publish("mute.a", enc.encode("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishUnconfirmedError);
    expect((err as Error).message).toMatch(/none within 300 ms/);

    const q = new JetStreamPublisher(own, { timeoutMs: 60_000 });
    const pending = q.publish("mute.b", enc.encode("x")).catch((e: unknown) => e);
    await own.flush();
    await own.close();
    expect(await pending).toBeInstanceOf(PublishUnconfirmedError);
    await mute.close();
  });
});
