// The Kubernetes commands of the CLI through the real binary: `jobchain manifest` prints a JobGraph the operator's
// own parser accepts, in the canonical form the CRD takes; mistakes exit 2 with a message and no stack trace.
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { parseJobGraphSpec } from "../operator/api/index.ts";
import { cli, hasStack } from "./helpers/cli.ts";

describe("jobchain manifest and operator", () => {
  it("prints a JobGraph for a configuration's graph, with its parameter groups and the list form of next", async () => {
    const r = await cli(["manifest", "examples/pipeline", "--graph", "text_report", "--image", "my-runner:1"]);
    expect(r.code, r.stderr).toBe(0);
    const jg = YAML.parse(r.stdout);
    expect(jg).toMatchObject({ apiVersion: "jobchain.dev/v1alpha1", kind: "JobGraph", metadata: { name: "text-report" }, spec: { image: "my-runner:1" } });
    expect(Object.keys(jg.spec.parameters).sort()).toEqual(["brief", "detailed"]);
    expect(jg.spec.graph.report).toEqual({ next: [] });
    expect(jg.spec.graph.clean.next.sort()).toEqual(["analyse_tone", "analyse_words"]);
    const parsed = parseJobGraphSpec(jg.spec);
    expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
  });

  it("refuses mistakes with exit 2, a message and no stack", async () => {
    const cases: [string[], RegExp][] = [
      [["manifest", "examples/pipeline", "--graph", "nope"], /unknown graph 'nope'/],
      [["manifest", "/no/such/dir", "--graph", "g"], /no such file or directory/],
      [["operator", "--metrics-port", "x"], /--metrics-port must be a port number/],
      [["operator", "--kubeconfig", "/no/such/kubeconfig"], /kubeconfig \/no\/such\/kubeconfig does not exist/],
      [["operator", "--lease-duration", "1"], /--lease-duration must be at least 2 seconds/],
      [["operator", "--allowed-images", ","], /--allowed-images needs at least one image prefix/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(hasStack(r.stderr)).toBe(false);
    }
  });
});
