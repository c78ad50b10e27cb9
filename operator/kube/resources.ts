// Resource types and object shapes: the small part of the Kubernetes object model the controller machinery needs.

/** An API resource: where its objects live. `group` is "" for the core API (`/api/v1`). */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

const resource = (group: string, version: string, plural: string, kind: string, namespaced = true): ResourceType =>
  Object.freeze({ group, version, plural, kind, namespaced });

export const CORE = Object.freeze({
  configMaps: resource("", "v1", "configmaps", "ConfigMap"),
  secrets: resource("", "v1", "secrets", "Secret"),
  events: resource("", "v1", "events", "Event"),
  pods: resource("", "v1", "pods", "Pod"),
  serviceAccounts: resource("", "v1", "serviceaccounts", "ServiceAccount"),
  namespaces: resource("", "v1", "namespaces", "Namespace", false),
});

export const APPS = Object.freeze({ deployments: resource("apps", "v1", "deployments", "Deployment") });
export const COORDINATION = Object.freeze({ leases: resource("coordination.k8s.io", "v1", "leases", "Lease") });
export const APIEXTENSIONS = Object.freeze({
  customResourceDefinitions: resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false),
});

/** `v1` for the core API, `group/version` otherwise: the `apiVersion` of the type's objects. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

/** A resource's display name in messages, like kubectl's: `configmaps`, `jobgraphs.jobchain.dev`. */
export function resourceName(type: ResourceType): string {
  return type.group === "" ? type.plural : `${type.plural}.${type.group}`;
}

/**
 * The URL path of a collection (`name` omitted) or of one object, with an optional subresource. A namespaced type
 * without a namespace addresses every namespace (list and watch only).
 */
export function resourcePath(type: ResourceType, namespace: string | undefined, name?: string, subresource?: string): string {
  let p = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  if (type.namespaced && namespace !== undefined && namespace !== "") p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${type.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) p += `/${subresource}`;
  return p;
}

/** The store and work-queue key of an object: `namespace/name`, or `name` for a cluster-scoped one. */
export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by objectKey(). */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
