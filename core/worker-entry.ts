// The body of a job worker thread: imports job modules, builds jobs by registered class name, runs them.
import { parentPort, threadId } from "node:worker_threads";
import { isJobClass, type Job, type JobClass, type JobContext } from "./job.ts";
import { createLogger } from "./logging.ts";
import { resolveJobchainFromHere } from "./self-resolve.ts";
import type { WorkerReply, WorkerRequest } from "./workers.ts";

resolveJobchainFromHere();

const port = parentPort!;
const classes = new Map<string, Promise<JobClass>>();
const jobs = new Map<string, Job>();
const controllers = new Map<number, AbortController>();
const logger = createLogger({ name: `jobchain-worker-${threadId}` });

function loadClass(module: string, className: string): Promise<JobClass> {
  const key = `${module}#${className}`;
  let p = classes.get(key);
  if (!p) {
    p = import(module).then((mod: Record<string, unknown>) => {
      const cls = Object.values(mod).find((v) => isJobClass(v) && (v.name === className || v.alias === className));
      if (!cls) throw new Error(`module ${module} exports no job class '${className}'`);
      return cls as JobClass;
    });
    classes.set(key, p);
  }
  return p;
}

async function run(req: WorkerRequest): Promise<unknown> {
  const key = `${req.module}#${req.className}#${req.graph}#${req.name}`;
  let job = jobs.get(key);
  if (!job) {
    const cls = await loadClass(req.module, req.className);
    job = new cls(req.name, req.properties);
    jobs.set(key, job);
  }
  const controller = new AbortController();
  controllers.set(req.id, controller);
  const ctx: JobContext = {
    taskId: req.taskId,
    graph: req.graph,
    job: req.name,
    attempt: req.attempt,
    inputs: req.inputs,
    signal: controller.signal,
    logger: logger.child({ task: req.taskId, graph: req.graph, job: req.name }),
    span: undefined,
    progress: (info) => port.postMessage({ type: "progress", id: req.id, info } satisfies WorkerReply),
  };
  try {
    return await job.run(req.task, ctx);
  } finally {
    controllers.delete(req.id);
  }
}

port.on("message", (m: WorkerRequest | { type: "abort"; id: number }) => {
  if (m.type === "abort") {
    controllers.get(m.id)?.abort(new Error("aborted by the engine"));
    return;
  }
  run(m).then(
    (output) => port.postMessage({ type: "done", id: m.id, output } satisfies WorkerReply),
    (err: unknown) => {
      const e = err as Error;
      port.postMessage({ type: "error", id: m.id, name: e?.name ?? "Error", message: e?.message ?? String(err) } satisfies WorkerReply);
    },
  );
});
