// What the test node (node.ts) changes on the host, and how each change is taken back. Everything here is
// synchronous so that it can also run from an exit hook, and idempotent so that a second stop (or the cleanup of a
// stale node after a kill -9) is harmless.
//
//   sysctls     the kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops and
//               kernel.keys.*; the bridge plugin and kube-proxy set net.ipv4.ip_forward and friends. The values of
//               every writable file in SYSCTL_DIRS are recorded before the start and written back if they differ.
//   iptables    chains named KUBE-*, CNI-* and JOBCHAIN-* (kubelet, kube-proxy, CNI, the egress guard) and the rules
//               that jump to them, in every table of iptables and ip6tables; a table that did not exist before and
//               is empty afterwards is deleted (nft), so `iptables-save` prints what it printed before.
//   links       the CNI bridge (it also holds the node IP), the pods' veths.
//   netns       the pods' network namespaces (/run/netns/cni-*).
//   mounts      everything mounted under the node's directories and the fixed paths below.
//   cgroups     the node's cgroup root (/<CGROUP_ROOT> in every hierarchy): the kubelet puts pods under it.
//   fixed paths kubelet and containerd use some paths whatever their root directories (FIXED_PATHS); those that
//               did not exist before are removed.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync, accessSync, constants } from "node:fs";
import path from "node:path";

/** Directories of /proc/sys whose writable files are recorded and restored (not recursive). */
export const SYSCTL_DIRS = [
  "vm",
  "kernel",
  "kernel/keys",
  "net/core",
  "net/ipv4",
  "net/ipv4/conf/all",
  "net/ipv4/conf/default",
  "net/ipv4/conf/lo",
  "net/ipv6/conf/all",
  "net/ipv6/conf/default",
  "net/bridge",
  "net/netfilter",
] as const;
/** Sysctls that change by themselves, or are write-only. */
const SYSCTL_VOLATILE = new Set(["kernel/ns_last_pid", "kernel/tainted", "vm/drop_caches", "vm/compact_memory", "vm/stat_refresh",
  "net/ipv4/route/flush", "kernel/perf_event_max_sample_rate", "kernel/printk"]);

/** Paths kubelet, containerd and the CNI plugins use whatever their configured directories. */
export const FIXED_PATHS = [
  "/run/containerd", // shim sockets (/run/containerd/s)
  "/run/netns", // pods' network namespaces
  "/var/run/netns",
  "/var/lib/cni", // CNI result cache
  "/var/log/pods",
  "/var/log/containers",
  "/var/lib/kubelet",
  "/var/lib/containerd",
  "/opt/containerd",
  "/etc/kubernetes",
  "/run/runc",
] as const;

export const CHAIN_PREFIXES = ["KUBE-", "CNI-", "JOBCHAIN-"] as const;
const TABLES = ["filter", "nat", "mangle", "raw", "security"] as const;
const FAMILIES = [
  { save: "iptables-save", restore: "iptables-restore", nft: "ip" },
  { save: "ip6tables-save", restore: "ip6tables-restore", nft: "ip6" },
] as const;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command synchronously; never throws (a missing command is status null). */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Run {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error?.message ?? "") };
}

/** Like run() but throws with the command's stderr when it fails. */
export function must(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? "not run"}): ${r.stderr.trim()}`);
  return r.stdout;
}

// ---- sysctls -------------------------------------------------------------------------------------------------

export function readSysctls(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of SYSCTL_DIRS) {
    const dir = path.join("/proc/sys", d);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      const key = `${d}/${n}`;
      if (SYSCTL_VOLATILE.has(key)) continue;
      const file = path.join(dir, n);
      try {
        if (!statSync(file).isFile()) continue;
        accessSync(file, constants.W_OK);
        out[key] = readFileSync(file, "utf8");
      } catch {
        /* not readable or not writable */
      }
    }
  }
  return out;
}

/** Writes back every recorded sysctl whose value differs now; returns those that could not be restored. */
export function restoreSysctls(before: Record<string, string>): string[] {
  const failed: string[] = [];
  // ip_forward first: writing it resets the per-interface `forwarding` values, which are then restored after it.
  const keys = Object.keys(before).sort((a, b) => Number(b === "net/ipv4/ip_forward") - Number(a === "net/ipv4/ip_forward"));
  for (const key of keys) {
    const file = path.join("/proc/sys", key);
    const want = before[key] ?? "";
    let now: string;
    try {
      now = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    if (now === want) continue;
    try {
      writeFileSync(file, want);
    } catch {
      /* checked below */
    }
    try {
      if (readFileSync(file, "utf8") !== want) failed.push(`${key.replaceAll("/", ".")}=${want.trim()} (is ${now.trim()})`);
    } catch {
      failed.push(key);
    }
  }
  return failed;
}

// ---- iptables ------------------------------------------------------------------------------------------------

function ours(chain: string): boolean {
  return CHAIN_PREFIXES.some((p) => chain.startsWith(p));
}

/** Tables that exist now, per family ("ip"/"ip6"), as `iptables-save` lists them. */
export function iptablesTables(): Record<"ip" | "ip6", string[]> {
  const out = { ip: [] as string[], ip6: [] as string[] };
  for (const f of FAMILIES) {
    const r = run(f.save, []);
    if (r.status !== 0) continue;
    out[f.nft] = [...r.stdout.matchAll(/^\*(\S+)$/gm)].map((m) => m[1] ?? "");
  }
  return out;
}

/**
 * Removes our chains and the rules that jump to them; deletes tables created since `tablesBefore` that hold
 * nothing else. Returns what could not be removed.
 */
export function removeIptables(tablesBefore: Record<"ip" | "ip6", string[]>): string[] {
  const problems: string[] = [];
  for (const f of FAMILIES) {
    for (const table of TABLES) {
      const saved = run(f.save, ["-t", table]);
      if (saved.status !== 0 || !saved.stdout.includes(`*${table}`)) continue;
      const lines = saved.stdout.split("\n");
      const chains = lines.filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0] ?? "");
      const mine = chains.filter(ours);
      const deletes = lines
        .filter((l) => l.startsWith("-A "))
        .filter((l) => {
          const chain = l.split(" ")[1] ?? "";
          const target = /\s-[jg]\s+(\S+)/.exec(l)?.[1] ?? "";
          return !ours(chain) && ours(target);
        })
        .map((l) => `-D${l.slice(2)}`);
      if (mine.length || deletes.length) {
        const input = [`*${table}`, ...deletes, ...mine.map((c) => `-F ${c}`), ...mine.map((c) => `-X ${c}`), "COMMIT", ""].join("\n");
        const r = run(f.restore, ["--noflush"], { input });
        if (r.status !== 0) problems.push(`${f.save} -t ${table}: ${r.stderr.trim()}`);
      }
      if (!tablesBefore[f.nft].includes(table)) {
        const after = run(f.save, ["-t", table]).stdout;
        if (!/^-A /m.test(after) && !/^:(?!(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) )/m.test(after)) {
          const r = run("nft", ["delete", "table", f.nft, table]);
          if (r.status !== 0 && !/No such file/.test(r.stderr)) problems.push(`nft delete table ${f.nft} ${table}: ${r.stderr.trim()}`);
        }
      }
    }
  }
  return problems;
}

// ---- links, network namespaces, mounts, cgroups, paths -------------------------------------------------------

export function linkExists(name: string): boolean {
  return run("ip", ["link", "show", "dev", name]).status === 0;
}

export function deleteLink(name: string): void {
  if (linkExists(name)) run("ip", ["link", "delete", name]);
}

/** The links enslaved to `bridge` (the pods' veths). */
export function bridgePorts(bridge: string): string[] {
  const r = run("ip", ["-o", "link", "show", "master", bridge]);
  if (r.status !== 0) return [];
  return [...r.stdout.matchAll(/^\d+:\s+([^:@\s]+)/gm)].map((m) => m[1] ?? "").filter(Boolean);
}

export function netnsNames(): string[] {
  const r = run("ip", ["netns", "list"]);
  return r.status === 0 ? r.stdout.split("\n").map((l) => l.split(" ")[0] ?? "").filter(Boolean) : [];
}

export function mountPoints(): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => (l.split(" ")[1] ?? "").replace(/\\040/g, " "))
    .filter(Boolean);
}

/** Unmounts everything at or below the given directories, deepest first (lazily when busy). */
export function unmountUnder(dirs: string[]): string[] {
  const under = (m: string) => dirs.some((d) => m === d || m.startsWith(`${d}/`));
  const left: string[] = [];
  for (let pass = 0; pass < 3; pass++) {
    const ms = mountPoints().filter(under).sort((a, b) => b.length - a.length);
    if (!ms.length) return [];
    for (const m of ms) if (run("umount", [m]).status !== 0) run("umount", ["-l", m]);
  }
  left.push(...mountPoints().filter(under));
  return left;
}

/** The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, named ones, the unified one). */
export function cgroupHierarchies(): string[] {
  const out: string[] = [];
  for (const l of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [, mp, type] = l.split(" ");
    if ((type === "cgroup" || type === "cgroup2") && mp?.startsWith("/sys/fs/cgroup")) out.push(mp);
  }
  return out;
}

/** PIDs in a cgroup subtree (any hierarchy). */
export function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  for (const h of cgroupHierarchies()) {
    const walk = (dir: string) => {
      try {
        for (const p of readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n")) if (p) pids.add(Number(p));
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
      } catch {
        /* gone */
      }
    };
    walk(path.join(h, root));
  }
  return [...pids];
}

/** Removes a cgroup subtree in every hierarchy (children first); returns the directories left. */
export function removeCgroups(root: string): string[] {
  const left: string[] = [];
  for (const h of cgroupHierarchies()) {
    const rm = (dir: string) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) rm(path.join(dir, e.name));
      try {
        rmdirSync(dir);
      } catch {
        if (existsSync(dir)) left.push(dir);
      }
    };
    rm(path.join(h, root));
  }
  return left;
}

export function existing(paths: readonly string[]): Record<string, boolean> {
  return Object.fromEntries(paths.map((p) => [p, existsSync(p)]));
}

/** Removes the fixed paths that did not exist before (after unmounting anything below them). */
export function removeCreatedPaths(before: Record<string, boolean>): string[] {
  const created = Object.keys(before).filter((p) => !before[p] && existsSync(p));
  const left = unmountUnder(created);
  for (const p of created) rmSync(p, { recursive: true, force: true });
  return left;
}

// ---- a snapshot for the hygiene test -------------------------------------------------------------------------

/** What a host-hygiene check compares before and after a node ran (volatile parts such as counters removed). */
export interface HostSnapshot {
  iptables: string;
  ip6tables: string;
  links: string[];
  netns: string[];
  mounts: string[];
  sysctls: Record<string, string>;
  cgroups: string[];
  paths: Record<string, boolean>;
}

function saveRules(cmd: string): string {
  const r = run(cmd, []);
  if (r.status !== 0) return `(${cmd} not available)`;
  return r.stdout
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
    .join("\n");
}

export function hostSnapshot(cgroupRoot: string): HostSnapshot {
  const links = run("ip", ["-o", "link"]).stdout.split("\n").filter(Boolean).map((l) => l.split(":")[1]?.trim() ?? l);
  return {
    iptables: saveRules("iptables-save"),
    ip6tables: saveRules("ip6tables-save"),
    links,
    netns: netnsNames(),
    mounts: mountPoints(),
    sysctls: Object.fromEntries(
      ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/ip_forward",
        "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/conf/all/route_localnet"].map((k) => {
        try {
          return [k, readFileSync(`/proc/sys/${k}`, "utf8").trim()];
        } catch {
          return [k, "(absent)"];
        }
      }),
    ),
    cgroups: cgroupHierarchies().filter((h) => existsSync(path.join(h, cgroupRoot))),
    paths: existing(FIXED_PATHS),
  };
}
