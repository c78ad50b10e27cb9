// The helm binary that scripts/helm/build.sh builds, run with a cluster's kubeconfig (the end-to-end suite and
// `make cluster-up` install charts/jobchain with it).
import { execFileSync } from "node:child_process";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");

/** The helm binary of scripts/helm/build.sh, or undefined with the reason in `helmMissing()`. */
export function helmBinary(): string | undefined {
  const bin = execFileSync(path.join(REPO, "scripts/helm/build.sh"), ["--print"], { encoding: "utf8" }).trim();
  return bin ? path.join(bin, "helm") : undefined;
}

export function helmMissing(): string | undefined {
  if (helmBinary()) return undefined;
  const marker = execFileSync("bash", ["-c", `cat "\${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"/helm/*/UNAVAILABLE 2>/dev/null || true`], { encoding: "utf8" }).trim();
  return `helm is not built${marker ? ` (${marker})` : ""}: run \`make helm\``;
}

/** helm with a cluster's env; stdout, or an Error carrying stderr. */
export function helm(args: string[], options: { env: Record<string, string>; timeoutMs?: number }): string {
  const bin = helmBinary();
  if (!bin) throw new Error(helmMissing());
  try {
    return execFileSync(bin, args, { env: { ...process.env, ...options.env }, encoding: "utf8", timeout: options.timeoutMs ?? 600_000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(" ")}: ${(err.stderr || err.message).trim()}`, { cause: e });
  }
}

