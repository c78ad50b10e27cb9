// Cleanup that must run however the test process ends: normal exit, or SIGINT/SIGTERM/SIGHUP.
const cleanups = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const c of cleanups) {
    try {
      c();
    } catch {
      // best effort: the others must still run
    }
  }
}

/** Runs `cleanup` (synchronously) when the process exits or is interrupted. */
export function onProcessExit(cleanup: () => void): void {
  cleanups.add(cleanup);
  if (installed) return;
  installed = true;
  process.once("exit", runAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      runAll();
      // Keep the default behaviour (terminate) unless someone else also handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}
