// vitest glue for suites that need the real node (node.ts): reports a skip loudly, with its reason, where no node
// can run here (not root, no overlayfs or cgroups, components or images not built) or one is already running.
import { execFileSync } from "node:child_process";
import { it } from "vitest";
import { nodeAlive, nodeSkipReason, readNodeState, type KubeNode } from "./node.ts";

/**
 * Undefined when a node can be started for this suite; otherwise the reason, after printing it to stderr and
 * registering one skipped test that carries it as its note. Call it at the top level of a test file.
 */
export function nodeSuiteSkip(suite: string, images: string[]): string | undefined {
  let reason = nodeSkipReason({ images });
  const running = readNodeState();
  if (reason === undefined && running && nodeAlive(running)) {
    reason = `a node is already running on this machine (started ${running.startedAt}; \`make cluster-down\` stops it)`;
  }
  if (reason === undefined) return undefined;
  console.warn(`SKIPPED ${suite}: ${reason}`);
  it(`${suite} (needs a real node)`, (ctx) => {
    ctx.skip(reason);
  });
  return reason;
}

/** kubectl against a node, returning stdout; throws with stderr on failure. */
export function kubectl(node: KubeNode, args: string[], input?: string): string {
  try {
    return execFileSync(node.kubectl, args, {
      env: { ...process.env, ...node.env },
      encoding: "utf8",
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
      ...(input !== undefined ? { input } : {}),
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`kubectl ${args.join(" ")}: ${(err.stderr || err.message).trim()}`, { cause: e });
  }
}

/** Polls `probe` until it returns a value other than undefined/false; throws with the last error after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
