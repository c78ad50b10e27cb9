// What the end-to-end suite (test/e2e/) needs of a Kubernetes cluster with real pods, whichever it is: the local
// single node (node.ts) or a kind cluster (kind.ts). JOBCHAIN_E2E_CLUSTER=kind picks kind; the default is the node.

export interface E2ECluster {
  readonly flavor: "node" | "kind";
  /** kubectl binary. */
  readonly kubectl: string;
  /** KUBECONFIG=... for kubectl and helm. */
  readonly env: Record<string, string>;
  /** Makes an image archive (docker-save format) available to the cluster's container runtime under its tags. */
  loadImageArchive(archive: string): Promise<void>;
  /** A host-reachable URL for a Service port (e.g. nats://host:port), kept working across the Service's pod restarts. */
  serviceUrl(namespace: string, service: string, port: number, scheme: string): Promise<{ url: string; close(): Promise<void> }>;
  /** Storage for PVCs: ensures `count` PersistentVolumes of `size` exist with a class the chart can name. */
  ensureVolumes(count: number, size: string): Promise<{ storageClassName: string }>;
  /**
   * SIGKILLs the main process of every running container of a pod, as a crash would: the pod stays, and its
   * kubelet restarts the containers. Resolves to the killed processes' host (or node container) PIDs.
   */
  killPodProcesses(namespace: string, pod: string): number[];
  /** Logs of the pods in `namespace`, its events and pod descriptions: printed when a test fails. */
  diagnostics(namespace: string): string;
  stop(): Promise<void>;
}
