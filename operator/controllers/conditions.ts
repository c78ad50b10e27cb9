// metav1.Condition handling: a condition keeps its lastTransitionTime while its status stays the same, so
// `kubectl wait` and users see when something changed, not when it was last written.
import type { Condition } from "../api/index.ts";

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

export function setCondition(existing: readonly Condition[] | undefined, next: ConditionInput, generation: number | undefined, now: Date): Condition[] {
  const list = [...(existing ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const merged: Condition = {
    ...next,
    message: next.message.slice(0, 32_000),
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now.toISOString(),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  if (i >= 0) list[i] = merged;
  else list.push(merged);
  return list;
}

export function conditionOf(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
