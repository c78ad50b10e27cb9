import { Job, type JobContext, type Task } from "jobchain";

/** Lower-cases the task's text and splits it into words. */
export class CleanText extends Job {
  async run(task: Task) {
    const text = String(task.text ?? "");
    const words = text.toLowerCase().match(/[a-z0-9']+/g) ?? [];
    return { words };
  }
}

/** Counts words and finds the most frequent ones that are not stopwords. */
export class WordStats extends Job {
  async run(_task: Task, ctx: JobContext) {
    const { words } = ctx.inputs.clean as { words: string[] };
    const stop = new Set((this.properties.stopwords as string[] | undefined) ?? []);
    const counts = new Map<string, number>();
    for (const w of words) if (!stop.has(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const ranked = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return { total: words.length, distinct: counts.size, ranked };
  }
}

/** Scores the tone of the text from small word lists. */
export class Tone extends Job {
  async run(_task: Task, ctx: JobContext) {
    const { words } = ctx.inputs.clean as { words: string[] };
    const pos = new Set(this.properties.positive as string[]);
    const neg = new Set(this.properties.negative as string[]);
    const score = words.reduce((s, w) => s + (pos.has(w) ? 1 : neg.has(w) ? -1 : 0), 0);
    return { score, tone: score > 0 ? "positive" : score < 0 ? "negative" : "neutral" };
  }
}

/** Joins both analyses (it runs once per task, when both have finished). */
export class Report extends Job {
  async run(task: Task, ctx: JobContext) {
    const words = ctx.inputs.analyse_words as { total: number; ranked: [string, number][] };
    const tone = ctx.inputs.analyse_tone as { tone: string; score: number };
    const top = Number(this.properties.top ?? 3);
    return {
      id: task.id,
      words: words.total,
      tone: tone.tone,
      score: tone.score,
      top_words: words.ranked.slice(0, top).map(([w]) => w),
    };
  }
}
