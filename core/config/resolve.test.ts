import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, Job, JobRegistry, loadConfig, type ConfigProblem, type Task } from "../index.ts";
import { tempDir } from "../../test/helpers/tmp.ts";

// The job type these configurations name, registered as the layers above core register their built-ins.
class Echo extends Job {
  run(task: Task) {
    return task;
  }
}
const known = new JobRegistry();
known.register(Echo, "<test>", true);

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function load(files: Record<string, string>) {
  const t = tempDir(files);
  cleanups.push(t.cleanup);
  return { ...(await loadConfig(t.dir, { registry: known })), dir: t.dir };
}

async function problems(files: Record<string, string>): Promise<ConfigProblem[]> {
  const t = tempDir(files);
  cleanups.push(t.cleanup);
  try {
    await loadConfig(t.dir, { registry: known });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => ({ ...p, file: p.file.replace(t.dir + "/", "") }));
  }
  throw new Error("expected a ConfigError");
}

const JOBS = `
a: {type: Echo}
b: {type: Echo}
c: {type: Echo}
`;

describe("config loading", () => {
  it("loads separate files and builds a topologically ordered instance with heads and tails", async () => {
    const { config } = await load({
      "jobs.yaml": JOBS,
      "graphs.yaml": "g:\n  c: {next: []}\n  b: {next: [c]}\n  a: {next: [b]}\n",
    });
    expect(config.instances).toHaveLength(1);
    const g = config.instances[0]!;
    expect(g.id).toBe("g");
    expect(g.nodes.map((n) => n.name)).toEqual(["a", "b", "c"]);
    expect(g.heads).toEqual(["a"]);
    expect(g.tails).toEqual(["c"]);
    expect(g.nodes[1]!.prev).toEqual(["a"]);
  });

  it("loads a combined jobchain.yaml, the original's jobchain_all.yaml, and a combined file path", async () => {
    const combined = `jobs:\n  a: {type: Echo}\ngraphs:\n  g:\n    a: {}\n`;
    for (const name of ["jobchain.yaml", "jobchain_all.yml", "jobchain.json"]) {
      const text = name.endsWith(".json") ? JSON.stringify({ jobs: { a: { type: "Echo" } }, graphs: { g: { a: { next: [] } } } }) : combined;
      const { config } = await load({ [name]: text });
      expect(config.instances.map((i) => i.id)).toEqual(["g"]);
    }
    const t = tempDir({ "my-pipeline.yaml": combined });
    cleanups.push(t.cleanup);
    const { config } = await loadConfig(`${t.dir}/my-pipeline.yaml`, { registry: known });
    expect(config.instances[0]!.nodes[0]!.type).toBe("Echo");
  });

  it("lets a dedicated file override that section of the combined file", async () => {
    const { config } = await load({
      "jobchain.yaml": `jobs:\n  a: {type: Echo}\ngraphs:\n  g1:\n    a: {}\n`,
      "graphs.yaml": `g2:\n  a: {}\n`,
    });
    expect(config.instances.map((i) => i.id)).toEqual(["g2"]);
  });

  it("substitutes whole-value placeholders keeping YAML types, one instance per group", async () => {
    const { config } = await load({
      "jobs.yaml": `
a:
  type: Echo
  properties:
    n: $n
    flag: $flag
    nested: {list: [$name, "literal $name", 3]}
    price: "$5.00"
b: {type: Echo, properties: {fixed: 1}}
`,
      "graphs.yaml": "g:\n  a: {next: [b]}\n  b: {}\nplain:\n  b: {}\n",
      "parameters.yaml": `
g:
  first:
    a: [{n: 1, flag: true, name: {deep: x}}]
  second-group:
    a: {n: 2.5, flag: false, name: null}
`,
    });
    expect(config.instances.map((i) => i.id)).toEqual(["g/first", "g/second-group", "plain"]);
    const first = config.instances[0]!.nodes.find((n) => n.name === "a")!;
    expect(first.properties).toEqual({ n: 1, flag: true, nested: { list: [{ deep: "x" }, "literal $name", 3] }, price: "$5.00" });
    const second = config.instances[1]!.nodes.find((n) => n.name === "a")!;
    expect(second.properties).toEqual({ n: 2.5, flag: false, nested: { list: [null, "literal $name", 3] }, price: "$5.00" });
    expect(config.instances[1]!.group).toBe("second-group");
  });

  it("resolves policies and save_result", async () => {
    const { config } = await load({
      "jobs.yaml": `
a:
  type: Echo
  timeout: 2.5
  retry: {attempts: 4, backoff: {initial: 0.5, max: 3, jitter: false}}
  concurrency: 3
  rateLimit: {max: 10, per: 2, key: llm}
  properties: {save_result: true}
b: {type: Echo, save_result: true, retry: {attempts: 2, backoff: 1}}
`,
      "graphs.yaml": "g:\n  a: {next: b}\n  b: {}\n",
    });
    const [a, b] = config.instances[0]!.nodes;
    expect(a!.policy).toEqual({
      timeout: 2.5,
      retry: { attempts: 4, backoff: { initial: 0.5, factor: 2, max: 3, jitter: false } },
      concurrency: 3,
      rateLimit: { max: 10, per: 2, key: "llm" },
    });
    expect(a!.saveResult).toBe(true);
    expect(b!.saveResult).toBe(true);
    expect(b!.policy.retry).toEqual({ attempts: 2, backoff: { initial: 1, factor: 2, max: 30, jitter: true } });
    expect(a!.next).toEqual(["b"]);
  });

  it("accepts several heads and several tails", async () => {
    const { config } = await load({
      "jobs.yaml": JOBS,
      "graphs.yaml": "g:\n  a: {next: [c]}\n  b: {next: [c]}\n  c: {}\nh:\n  a: {next: [b, c]}\n  b: {}\n  c: {}\n",
    });
    expect(config.instances[0]!.heads).toEqual(["a", "b"]);
    expect(config.instances[1]!.tails).toEqual(["b", "c"]);
  });
});

describe("config problems", () => {
  it("reports a YAML syntax error with its line", async () => {
    const ps = await problems({ "jobs.yaml": "a:\n  type: Echo\n b: [unclosed\n", "graphs.yaml": "g:\n  a: {}\n" });
    // The parser may report one mistake more than once; nothing else piles up on a file that did not parse.
    expect(ps.every((p) => p.file === "jobs.yaml" && p.message.startsWith("YAML syntax error"))).toBe(true);
    expect(ps[0]!.line).toBe(3);
    expect(ps[0]!.message).toMatch(/^YAML syntax error/);
  });

  it("reports every problem at once, each with file, path, line and hint", async () => {
    const ps = await problems({
      "jobs.yaml": `
a: {type: Echo}
b: {type: Ehco}
c: {type: Echo, tpye: x}
d: {type: Echo}
e: {type: Echo}
`,
      "graphs.yaml": `
g:
  a: {next: [b, nowhere]}
  b: {next: [d]}
  x: {next: []}
cyc:
  a: {next: [b]}
  b: {next: [e]}
  e: {next: [a]}
  d: {}
`,
    });
    const summary = ps.map((p) => `${p.file}:${p.line} ${p.path.join(".")}: ${p.message}`);
    expect(summary).toEqual([
      "jobs.yaml:3 b.type: unknown job type 'Ehco' for job 'b'",
      "jobs.yaml:4 c.tpye: unknown field 'tpye'",
      "graphs.yaml:3 g.a.next.1: next of 'a' names 'nowhere', which is not defined",
      "graphs.yaml:4 g.b.next.0: next of 'b' names 'd', which is not a job of graph 'g'",
      "graphs.yaml:5 g.x: job 'x' in graph 'g' is not defined in jobs",
      "graphs.yaml:7 cyc: graph 'cyc' has a cycle: a -> b -> e -> a",
    ]);
    expect(ps.find((p) => p.path.join(".") === "b.type")!.hint).toBe("did you mean 'Echo'?");
    expect(ps.find((p) => p.path.join(".") === "c.tpye")!.hint).toBe("did you mean 'type'?");
    expect(ps.find((p) => p.message.includes("not a job of graph"))!.hint).toBe("add 'd: {next: []}' (or its own next) to graph 'g'");
    for (const p of ps) expect(p.hint).toBeTruthy();
  });

  it("reports a graph with no head and no tail (all on a cycle)", async () => {
    const ps = await problems({ "jobs.yaml": JOBS, "graphs.yaml": "g:\n  a: {next: [b]}\n  b: {next: [a]}\n" });
    expect(ps.map((p) => p.message)).toEqual([
      "graph 'g' has a cycle: a -> b -> a",
      "graph 'g' has no head: every job has a predecessor",
      "graph 'g' has no tail: every job has a next",
    ]);
  });

  it("reports a self-loop as a cycle", async () => {
    const ps = await problems({ "jobs.yaml": JOBS, "graphs.yaml": "g:\n  a: {next: [a, b]}\n  b: {}\n" });
    expect(ps.map((p) => p.message)).toEqual(["graph 'g' has a cycle: a -> a", "graph 'g' has no head: every job has a predecessor"]);
  });

  it("reports parameter problems: missing parameters, missing group entries and keys, unused keys, unknown graph", async () => {
    const ps = await problems({
      "jobs.yaml": `
a: {type: Echo, properties: {x: $x, y: $y}}
b: {type: Echo, properties: {z: $z}}
`,
      "graphs.yaml": "g:\n  a: {next: [b]}\n  b: {}\nh:\n  b: {}\n",
      "parameters.yaml": `
g:
  one:
    a: {x: 1, typo: 2}
  two:
    a: [{x: 1}, {x: 2}]
    b: {z: 1}
nope:
  p: {a: {x: 1}}
`,
    });
    expect(ps.map((p) => `${p.file} ${p.path.join(".")}: ${p.message}`)).toEqual([
      "parameters.yaml g.two.a: 2 parameter sets for job 'a'; only one is allowed per group",
      "parameters.yaml nope: parameters for graph 'nope', which is not defined",
      "parameters.yaml g.one.a: group 'one' is missing parameter 'y' for job 'a'",
      "parameters.yaml g.one.a.typo: parameter 'typo' is not used by job 'a'",
      "parameters.yaml g.one: group 'one' of graph 'g' has no parameters for job 'b'",
      "jobs.yaml b.properties.z: placeholder '$z' of job 'b' (graph 'h') has no parameters",
    ]);
  });

  it("reports a missing directory, an empty directory, and missing sections", async () => {
    await expect(loadConfig("/nonexistent/jobchain-config", { registry: known })).rejects.toThrow(/no such file or directory/);
    expect((await problems({})).map((p) => p.message)).toEqual(["no configuration found in this directory"]);
    expect((await problems({ "jobs.yaml": JOBS })).map((p) => p.message)).toEqual(["no graphs are defined"]);
  });

  it("reports wrong shapes", async () => {
    const ps = await problems({
      "jobs.yaml": "- a\n- b\n",
      "graphs.yaml": "g: [a, b]\n",
    });
    expect(ps.map((p) => p.message)).toEqual([
      "expected a mapping of job names to job definitions",
      "graph 'g' must be a mapping of job names to {next: [...]}",
    ]);
  });

  it("reports invalid names and bad policy values", async () => {
    const ps = await problems({
      "jobs.yaml": "'bad name': {type: Echo}\nok: {type: Echo, retry: {attempts: 0}, timeout: -1}\n",
      "graphs.yaml": "g:\n  ok: {}\n",
    });
    expect(ps.map((p) => p.path.join("."))).toEqual(["bad name", "ok.timeout", "ok.retry.attempts"]);
  });

  it("reports a job module that fails to load", async () => {
    const ps = await problems({
      "jobs.yaml": "a: {type: Broken}\n",
      "graphs.yaml": "g:\n  a: {}\n",
      "jobs/broken.mjs": "export class Broken { this is not javascript }\n",
    });
    expect(ps[0]!.file).toBe("jobs/broken.mjs");
    expect(ps[0]!.message).toMatch(/^cannot load job module/);
    expect(ps[1]!.hint).toMatch(/failed to load/);
  });
});
