import { describe, expect, it } from "vitest";
import { MissingDependencyError, importOptional } from "./index.ts";

// A package name that is not installed anywhere, imported for real.
const ABSENT = "@jobchain-test/not-installed";

describe("importOptional", () => {
  it("names the feature and the package to install when the package is missing", async () => {
    const load = () => import(/* @vite-ignore */ ABSENT);
    const err = await importOptional("jobchain operator", [ABSENT], load).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingDependencyError);
    expect((err as Error).message).toBe(`jobchain operator needs ${ABSENT}: npm install ${ABSENT}`);
    expect((err as MissingDependencyError).packages).toEqual([ABSENT]);
    expect(((err as Error).cause as { code?: string }).code).toBe("ERR_MODULE_NOT_FOUND");
  });

  it("passes the module through when it loads, and other errors unchanged", async () => {
    expect((await importOptional("yaml", ["yaml"], () => import("yaml"))).parse("a: 1")).toEqual({ a: 1 });
    const other = await importOptional("x", ["some-other-package"], () => import(/* @vite-ignore */ ABSENT)).catch((e: unknown) => e);
    expect(other).not.toBeInstanceOf(MissingDependencyError);
    expect((other as { code?: string }).code).toBe("ERR_MODULE_NOT_FOUND");
  });
});
