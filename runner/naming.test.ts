import { describe, expect, it } from "vitest";
import { namesFor, taskIdOfToken, taskToken } from "./naming.ts";

describe("task tokens", () => {
  it("use plain ids as they are and encode the rest, reversibly, as one subject token", () => {
    const ids = ["t1", "A-b_9", "with.dot", "with space", "~tilde", "ünï/cødé", "a".repeat(201), "*", ">", ""];
    for (const id of ids) {
      const token = taskToken(id);
      expect(token).toMatch(/^~?[A-Za-z0-9_-]*$/);
      expect(taskIdOfToken(token)).toBe(id);
    }
    expect(taskToken("t1")).toBe("t1");
    expect(taskToken("with.dot")).toMatch(/^~/);
  });

  it("end a result subject, where clients read them back", () => {
    const n = namesFor("g/eu");
    const subject = n.resultSubject("order 7.1");
    expect(taskIdOfToken(subject.slice(subject.lastIndexOf(".") + 1))).toBe("order 7.1");
  });
});
