// Dynamic broker configs (KIP-226) as both doors alter and describe them: a change is forwarded to
// the active controller, which validates it and writes Config records, and is answered once this
// broker has applied the result (so a describe here right after sees it); a description is read
// from this broker's metadata image. The doors only translate.
import { errorCode, type Logger } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import { errorResult } from './errorResult.js';
import type { TopicAdmin } from './topicAdmin.js';

export type ConfigResourceType = 'broker' | 'cluster';

export interface ConfigResourceRef {
  /** 'broker' (name: the broker id) or 'cluster' (name '': the default of every broker). */
  readonly type: ConfigResourceType;
  readonly name: string;
}

export interface DynamicConfigChange extends ConfigResourceRef {
  readonly ops: ReadonlyArray<{ readonly key: string; readonly op: 'set' | 'delete'; readonly value: string | null }>;
}

export interface ConfigResourceOutcome extends ConfigResourceRef {
  readonly errorCode: number;
  readonly errorMessage: string;
}

export interface DynamicConfigsDescription extends ConfigResourceOutcome {
  /** The dynamic values set on this resource (not the inherited ones), by key. */
  readonly configs: Array<{ key: string; value: string }>;
}

/** The proto's op numbers are Kafka's OpType. */
const OP_NUMBERS = { set: 0, delete: 1 } as const;

/** Forwarded to the active controller; per-resource results in request order, answered once applied here. */
export async function alterDynamicConfigs(topics: TopicAdmin, logger: Logger, changes: readonly DynamicConfigChange[], validateOnly: boolean): Promise<ConfigResourceOutcome[]> {
  const failed = (fields: { errorCode: number; errorMessage: string }) => changes.map((change) => ({ type: change.type, name: change.name, ...fields }));
  try {
    const response = await topics.cluster.controller.incrementalAlterConfigs({
      resources: changes.map((change) => ({
        type: change.type,
        name: change.name,
        ops: change.ops.map((operation) => ({ key: operation.key, op: OP_NUMBERS[operation.op], value: operation.value ?? '' })),
      })),
      validateOnly,
    });
    if (response.errorCode !== 0) return failed(response);
    await topics.waitUntilApplied(Number(response.metadataOffset));
    return response.resources.map((result) => ({ type: result.type as ConfigResourceType, name: result.name, errorCode: result.errorCode, errorMessage: result.errorMessage }));
  } catch (error) {
    return failed(errorResult(error, logger));
  }
}

/**
 * The dynamic values of `resources` as this broker's metadata has them; with none asked for, every
 * resource that has one (the cluster default first, then brokers by id).
 */
export function describeDynamicConfigs(image: MetadataImage, resources: readonly ConfigResourceRef[]): DynamicConfigsDescription[] {
  const asked: ConfigResourceRef[] =
    resources.length > 0
      ? [...resources]
      : [{ type: 'cluster', name: '' } as ConfigResourceRef, ...image.brokers().map((broker): ConfigResourceRef => ({ type: 'broker', name: String(broker.id) }))].filter(
          (resource) => image.config(resource.type, resource.name).size > 0,
        );
  return asked.map((resource) => {
    const problem = unknownResource(image, resource);
    if (problem !== null) return { ...resource, errorCode: errorCode('INVALID_REQUEST'), errorMessage: problem, configs: [] };
    const configs = [...image.config(resource.type, resource.name)].map(([key, value]) => ({ key, value })).sort((a, b) => a.key.localeCompare(b.key));
    return { ...resource, errorCode: 0, errorMessage: '', configs };
  });
}

function unknownResource(image: MetadataImage, resource: ConfigResourceRef): string | null {
  if (resource.type === 'cluster') return resource.name === '' ? null : `the cluster resource has the empty name, not '${resource.name}'`;
  if (resource.type !== 'broker') return `unknown resource type '${String(resource.type)}' (broker or cluster)`;
  if (!/^(0|[1-9]\d{0,9})$/.test(resource.name) || image.broker(Number(resource.name)) === undefined) return `no broker '${resource.name}' is registered in the cluster`;
  return null;
}
