// Dynamic broker configs (Kafka's IncrementalAlterConfigs on BROKER resources, KIP-226; in KRaft
// ConfigurationControlManager): per-broker values (resource 'broker', name = the broker id) and
// cluster-wide defaults (resource 'cluster', name ''), written as Config records. A broker applies
// them when its metadata reaches them: a per-broker value wins over the cluster default, which wins
// over the node's own configuration. Only the keys Runnel can change at runtime are accepted
// (DYNAMIC_BROKER_CONFIG_KEYS); topic configs are not alterable yet.
import { dynamicBrokerKeyError, parseDynamicBrokerValue } from '@runnel/common';
import { NO_ERROR, apiError, type ApiError } from './errors.js';
import type { MetadataImage } from './image.js';
import type { ConfigRecord } from './records.js';

/** One change to one key: set it to `value`, or delete it (back to the next level down). */
export interface ConfigOperation {
  readonly key: string;
  readonly op: 'set' | 'delete';
  /** Required for 'set'; ignored for 'delete'. */
  readonly value?: string | null;
}

export interface ConfigResourceChange {
  /** 'broker': one broker (name = its id); 'cluster': the default of every broker (name ''). */
  readonly type: 'broker' | 'cluster';
  readonly name: string;
  readonly ops: readonly ConfigOperation[];
}

export interface IncrementalAlterConfigsRequest {
  readonly resources: readonly ConfigResourceChange[];
  /** Validate every change and answer as if applied, writing nothing. */
  readonly validateOnly?: boolean;
}

export interface ConfigResourceResult extends ApiError {
  readonly type: 'broker' | 'cluster';
  readonly name: string;
}

export interface IncrementalAlterConfigsResponse {
  readonly resources: readonly ConfigResourceResult[];
}

/** A limit on resources per request (a cluster has at most a few hundred brokers, plus the default). */
export const CONFIG_RESOURCES_PER_REQUEST_MAX = 10_000;

/**
 * The records that apply `request` to `image`, with a result per resource in request order. Each
 * resource is all or nothing (Kafka's rule): one bad operation refuses the whole resource, and the
 * others go ahead. A set to the current value or a delete of an unset key writes no record.
 */
export function alterDynamicConfigs(image: MetadataImage, request: IncrementalAlterConfigsRequest): { records: ConfigRecord[]; response: IncrementalAlterConfigsResponse } {
  const records: ConfigRecord[] = [];
  const counts = new Map<string, number>();
  const resourceKey = (resource: ConfigResourceChange): string => `${resource.type}:${resource.name}`;
  for (const resource of request.resources) counts.set(resourceKey(resource), (counts.get(resourceKey(resource)) ?? 0) + 1);
  const tooMany = request.resources.length > CONFIG_RESOURCES_PER_REQUEST_MAX;
  const resources = request.resources.map((resource): ConfigResourceResult => {
    const at = { type: resource.type, name: resource.name };
    if (tooMany) return { ...at, ...apiError('INVALID_REQUEST', `${request.resources.length} resources in one request, over the limit of ${CONFIG_RESOURCES_PER_REQUEST_MAX}`) };
    if (counts.get(resourceKey(resource))! > 1) return { ...at, ...apiError('INVALID_REQUEST', `${describeResource(resource)} appears more than once in the request`) };
    const outcome = resourceRecords(image, resource);
    if ('errorCode' in outcome) return { ...at, ...outcome };
    if (request.validateOnly !== true) records.push(...outcome.records);
    return { ...at, ...NO_ERROR };
  });
  return { records, response: { resources } };
}

function describeResource(resource: { readonly type: string; readonly name: string }): string {
  return resource.type === 'cluster' ? 'the cluster default' : `broker '${resource.name}'`;
}

function resourceRecords(image: MetadataImage, resource: ConfigResourceChange): ApiError | { readonly records: ConfigRecord[] } {
  const nameError = resourceNameError(image, resource);
  if (nameError !== null) return apiError('INVALID_REQUEST', nameError);
  const seen = new Set<string>();
  const current = image.config(resource.type, resource.name);
  const records: ConfigRecord[] = [];
  for (const operation of resource.ops) {
    if (seen.has(operation.key)) return apiError('INVALID_REQUEST', `config '${operation.key}' appears more than once for ${describeResource(resource)}`);
    seen.add(operation.key);
    const keyError = dynamicBrokerKeyError(operation.key);
    if (keyError !== null) return apiError('INVALID_CONFIG', keyError);
    let value: string | null = null;
    if (operation.op === 'set') {
      if (operation.value === undefined || operation.value === null) return apiError('INVALID_REQUEST', `no value to set '${operation.key}' to`);
      const parsed = parseDynamicBrokerValue(operation.key, operation.value);
      if ('error' in parsed) return apiError('INVALID_CONFIG', parsed.error);
      value = parsed.value;
    }
    if ((current.get(operation.key) ?? null) === value) continue;
    records.push({ type: 'Config', resourceType: resource.type, resourceName: resource.name, name: operation.key, value });
  }
  return { records };
}

function resourceNameError(image: MetadataImage, resource: ConfigResourceChange): string | null {
  if (resource.type === 'cluster') return resource.name === '' ? null : `the cluster resource has the empty name, not '${resource.name}'`;
  if (!/^(0|[1-9]\d{0,9})$/.test(resource.name)) return `broker '${resource.name}': a broker resource is named by a broker id (a whole number ≥ 0)`;
  if (image.broker(Number(resource.name)) === undefined) return `broker ${resource.name} is not registered in the cluster`;
  return null;
}
