// Logging: pino to stderr (stdout belongs to results), level from JOBCHAIN_LOG_LEVEL.
import { pino, type Logger } from "pino";

const LEVELS: Record<string, string> = { warning: "warn", critical: "fatal", off: "silent", none: "silent" };

/** The log level named by JOBCHAIN_LOG_LEVEL (pino or Python-style names), default `info`. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const raw = (env.JOBCHAIN_LOG_LEVEL ?? "info").trim().toLowerCase();
  const level = LEVELS[raw] ?? raw;
  return ["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(level) ? level : "info";
}

/** Creates the root logger. Writes synchronously to stderr so nothing is lost when the CLI exits. */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    { name: options.name ?? "jobchain", level: options.level ?? logLevelFromEnv() },
    pino.destination({ fd: 2, sync: true }),
  );
}

export type { Logger };
