import { describe, expect, it } from "vitest";
import { UsageError } from "../errors.ts";
import { busOptions, replicasOption } from "./nats-flags.ts";

describe("--replicas", () => {
  it("takes the flag over JOBCHAIN_NATS_REPLICAS, and neither means unset", () => {
    expect(replicasOption("3", { JOBCHAIN_NATS_REPLICAS: "5" })).toBe(3);
    expect(replicasOption(undefined, { JOBCHAIN_NATS_REPLICAS: "5" })).toBe(5);
    expect(replicasOption(undefined, {})).toBeUndefined();
    expect(busOptions({ replicas: "1" }).replicas).toBe(1);
  });

  it("refuses a count JetStream cannot have, naming where it came from", () => {
    for (const bad of ["0", "6", "2.5", "three", "-1"]) {
      expect(() => replicasOption(bad, {})).toThrow(UsageError);
      expect(() => replicasOption(bad, {})).toThrow(`--replicas must be an integer from 1 to 5, got '${bad}'`);
    }
    expect(() => replicasOption(undefined, { JOBCHAIN_NATS_REPLICAS: "7" })).toThrow("JOBCHAIN_NATS_REPLICAS must be an integer from 1 to 5, got '7'");
  });
});
