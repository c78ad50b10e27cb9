// Giving memory back to the operating system when a runner has nothing to do.
//
// V8 keeps the heap it grew while busy (and while loading the configuration and the job modules at start-up):
// an idle runner would hold 90 MB, one that has just worked through a burst several times that. Runners are
// scaled out for bursts and then sit idle, so a runner asks V8 for one full, memory-reducing collection once it
// has started, and again whenever it has been idle for a while: that shrinks the young generation and releases
// free pages. Never while a message is in hand, and not after short pauses: the collection also drops compiled
// code, which the next burst then has to compile again.
import v8 from "node:v8";
import vm from "node:vm";

type GcFunction = (options?: { type?: string; execution?: string; flavor?: string }) => void;

let gcFunction: GcFunction | null | undefined;

/** V8's collector entry point, made available to this process only through a fresh context. */
function collector(): GcFunction | null {
  if (gcFunction === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      gcFunction = vm.runInNewContext("gc") as GcFunction;
    } catch {
      gcFunction = null;
    }
  }
  return gcFunction;
}

/** Runs one full collection that also shrinks the heap. Returns false when the runtime does not allow it. */
export function releaseMemory(): boolean {
  const gc = collector();
  if (!gc) return false;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}

export interface IdleWatch {
  /** Call on every sign of work (a message arrives, a message is done). */
  active(): void;
  stop(): void;
}

/**
 * Calls `release` once whenever `isIdle()` has held for `afterMs` since the last `active()`; again only after
 * new activity.
 */
export function watchIdle(isIdle: () => boolean, afterMs: number, release: () => void = releaseMemory): IdleWatch {
  let last = Date.now();
  let released = false;
  const timer = setInterval(() => {
    if (released || Date.now() - last < afterMs || !isIdle()) return;
    released = true;
    release();
  }, Math.max(50, afterMs / 4));
  timer.unref();
  return {
    active() {
      last = Date.now();
      released = false;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
