// What a JobGraph owns in Kubernetes, built as plain objects: one immutable ConfigMap per version (the
// configuration its runners load) and one Deployment per pool and version. The pod template passes the
// PodSecurity `restricted` profile and mounts no service-account token: runners need no Kubernetes API.
import { createHash } from "node:crypto";
import { API_VERSION, LABELS } from "../api/index.ts";
import type { GraphPlan, PoolPlan } from "./plan.ts";

export const MANAGED_BY = "jobchain";
export const VERSION_LABEL = "jobchain.dev/version";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const CONFIG_KEY = "jobchain.json";
/** Port of the runner's /metrics, /healthz and /readyz. */
export const RUNNER_METRICS_PORT = 9464;
/** The Secret keys a runner reads NATS credentials from (each optional). */
export const NATS_SECRET_KEYS = { token: "JOBCHAIN_NATS_TOKEN", user: "JOBCHAIN_NATS_USER", password: "JOBCHAIN_NATS_PASSWORD" } as const;

export interface OwnerRef {
  name: string;
  uid: string;
}

export interface RunnerSettings {
  natsUrl: string;
  /** A Secret holding NATS credentials (keys token, user, password). */
  natsSecret?: string | undefined;
}

/** A name within Kubernetes' 63-character label limit: long parts are shortened with a hash of the whole. */
export function objectName(parts: string[], limit = 52): string {
  const full = parts.join("-");
  if (full.length <= limit) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 6);
  return `${full.slice(0, limit - 7).replace(/-+$/, "")}-${hash}`;
}

export function configMapName(graph: string, version: string): string {
  return objectName([graph, version]);
}

export function deploymentName(graph: string, pool: string, version: string): string {
  return objectName([graph, pool, version]);
}

function ownerReferences(owner: OwnerRef): unknown[] {
  return [{ apiVersion: API_VERSION, kind: "JobGraph", name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }];
}

export function graphLabels(graph: string, version: string): Record<string, string> {
  return { [LABELS.graph]: graph, [VERSION_LABEL]: version, [LABELS.managedBy]: MANAGED_BY };
}

export function configMapFor(namespace: string, owner: OwnerRef, plan: GraphPlan): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: configMapName(owner.name, plan.version),
      namespace,
      labels: graphLabels(owner.name, plan.version),
      ownerReferences: ownerReferences(owner),
    },
    // A version's configuration never changes: a new spec is a new version with its own ConfigMap.
    immutable: true,
    data: { [CONFIG_KEY]: JSON.stringify(plan.config) },
  };
}

/** The restricted-profile security settings of every runner container. */
export const RUNNER_SECURITY_CONTEXT = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
} as const;

export function deploymentFor(
  namespace: string,
  owner: OwnerRef,
  plan: GraphPlan,
  pool: PoolPlan,
  replicas: number,
  settings: RunnerSettings,
): Record<string, unknown> {
  const name = deploymentName(owner.name, pool.name, plan.version);
  const labels = { ...graphLabels(owner.name, plan.version), [LABELS.pool]: pool.name, [COMPONENT_LABEL]: "runner" };
  const args = ["runner", "--graph", plan.graphId, "--pool", pool.name, "--metrics-port", String(RUNNER_METRICS_PORT)];
  if (pool.concurrency !== undefined) args.push("--concurrency", String(pool.concurrency));
  const env: unknown[] = [
    { name: "JOBCHAIN_CONFIG", valueFrom: { configMapKeyRef: { name: configMapName(owner.name, plan.version), key: CONFIG_KEY } } },
    { name: "JOBCHAIN_NATS_URL", value: settings.natsUrl },
    // Where the runner reports whether it could load the graph (e.g. a job type its image lacks).
    { name: "JOBCHAIN_RUNNER_REPORT", value: `${plan.graphId}.${pool.name}` },
  ];
  if (settings.natsSecret) {
    for (const [key, variable] of Object.entries(NATS_SECRET_KEYS)) {
      env.push({ name: variable, valueFrom: { secretKeyRef: { name: settings.natsSecret, key, optional: true } } });
    }
  }
  const probe = (path: string) => ({ httpGet: { path, port: "metrics" }, periodSeconds: 5, timeoutSeconds: 3 });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace, labels, ownerReferences: ownerReferences(owner) },
    spec: {
      replicas,
      selector: { matchLabels: { [LABELS.graph]: owner.name, [LABELS.pool]: pool.name, [VERSION_LABEL]: plan.version } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // Runners drain on SIGTERM: finish or hand back the messages in hand (30 s by default).
          terminationGracePeriodSeconds: 40,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } },
          ...(pool.nodeSelector ? { nodeSelector: pool.nodeSelector } : {}),
          ...(pool.tolerations ? { tolerations: pool.tolerations } : {}),
          containers: [
            {
              name: "runner",
              image: plan.image,
              imagePullPolicy: "IfNotPresent",
              command: ["jobchain"],
              args,
              env,
              ports: [{ name: "metrics", containerPort: RUNNER_METRICS_PORT }],
              readinessProbe: probe("/readyz"),
              livenessProbe: { ...probe("/healthz"), failureThreshold: 6 },
              ...(pool.resources ? { resources: pool.resources } : {}),
              securityContext: RUNNER_SECURITY_CONTEXT,
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: "256Mi" } }],
        },
      },
    },
  };
}
