// Shared by the operator/kube suites: a small CRD with a status subresource, created through the client under test.
import { APIEXTENSIONS, type KubeClient, type KubeObject, type ResourceType } from "../../operator/kube/index.ts";
import { until } from "../helpers/until.ts";

export const WIDGETS: ResourceType = { group: "machinery.jobchain.test", version: "v1", plural: "widgets", kind: "Widget", namespaced: true };

export interface Widget extends KubeObject {
  spec?: { size?: number; color?: string };
  status?: { phase?: string; observed?: number };
}

/** Creates the Widget CRD and waits until it is served. */
export async function installWidgetCrd(client: KubeClient): Promise<void> {
  await client.create(APIEXTENSIONS.customResourceDefinitions, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${WIDGETS.plural}.${WIDGETS.group}` },
    spec: {
      group: WIDGETS.group,
      scope: "Namespaced",
      names: { plural: WIDGETS.plural, singular: "widget", kind: WIDGETS.kind, listKind: "WidgetList" },
      versions: [
        {
          name: WIDGETS.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  required: ["size"],
                  properties: { size: { type: "integer", minimum: 1 }, color: { type: "string", enum: ["red", "green", "blue"] } },
                },
                status: { type: "object", properties: { phase: { type: "string" }, observed: { type: "integer" } } },
              },
            },
          },
        },
      ],
    },
  });
  await until(
    async () => {
      try {
        await client.list(WIDGETS, { namespace: "default", limit: 1 });
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    "the Widget CRD is served",
  );
}
