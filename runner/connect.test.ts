import { describe, expect, it } from "vitest";
import { NatsSettingError, connectionOptions } from "./connect.ts";

describe("connectionOptions", () => {
  it("takes several server URLs, with or without a nats:// or tls:// scheme", () => {
    expect(connectionOptions({ url: "nats://a:4222, tls://b:4443,c:4222" }).servers).toEqual(["nats://a:4222", "tls://b:4443", "c:4222"]);
  });

  it("reconnects for ever and gives up on a silent server after a few missed pings", () => {
    const o = connectionOptions({ url: "nats://a:1,nats://b:2" });
    expect(o).toMatchObject({ maxReconnectAttempts: -1, pingInterval: 10_000, maxPingOut: 3 });
  });

  it("refuses another scheme or an empty list with a hint", () => {
    for (const url of ["http://a:4222", "nats://a:1,foo://b", " , "]) {
      const err = (() => {
        try {
          connectionOptions({ url });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(NatsSettingError);
      expect((err as NatsSettingError).hint).toMatch(/nats:\/\/HOST:PORT/);
    }
  });

  it("names an unreadable credentials file and says what to check", () => {
    expect(() => connectionOptions({ url: "nats://a:1", credsFile: "/nonexistent/x.creds" })).toThrow(
      "cannot read the credentials file (--nats-creds) '/nonexistent/x.creds': no such file",
    );
  });
});
