// Linked abort signals without AbortSignal.any: on Node 24 every signal AbortSignal.any makes stays reachable
// from its sources for as long as they live, which leaks memory per job run under a long-lived signal. A child
// controller with one listener, removed when the work is done, costs nothing afterwards.

export interface ChildAbort {
  /** Aborts on its own (e.g. a timeout) or when the parent aborts. */
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  /** Detaches from the parent; call when the work that used the signal is over. */
  dispose(): void;
}

export function childAbort(parent: AbortSignal | undefined): ChildAbort {
  const controller = new AbortController();
  if (!parent) return { controller, signal: controller.signal, dispose: () => {} };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, signal: controller.signal, dispose: () => {} };
  }
  const onAbort = (): void => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, signal: controller.signal, dispose: () => parent.removeEventListener("abort", onAbort) };
}
