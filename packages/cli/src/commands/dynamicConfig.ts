// `runnel config set|delete|describe`: dynamic broker configs (Kafka's `kafka-configs.sh --alter
// --entity-type brokers (--entity-name N | --entity-default)`), per broker or as the cluster
// default, written to the metadata log by the controller and applied by every broker as it
// follows the log. Only keys a broker can change at runtime are accepted (the replication
// throttles); everything else is static and lives in the node's own configuration.
import { type BrokerConfigOutcome, type BrokerConfigResource, type DynamicBrokerConfigs } from '@runnel/client';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';
import { withAdmin } from './topic.js';

export interface ResourceOptions {
  broker?: number;
  cluster?: boolean;
}

/** --broker N or --cluster, exactly one (for describe, neither: every resource with a value). */
export function resourceOf(options: ResourceOptions, command: string, required: boolean): BrokerConfigResource | null {
  if (options.broker !== undefined && options.cluster === true) throw new Error(`config ${command}: give --broker N or --cluster, not both`);
  if (options.broker !== undefined) return { type: 'broker', name: String(options.broker) };
  if (options.cluster === true) return { type: 'cluster', name: '' };
  if (required) throw new Error(`config ${command}: give --broker N (one broker) or --cluster (the default of every broker)`);
  return null;
}

function describeResource(resource: BrokerConfigResource): string {
  return resource.type === 'cluster' ? 'the cluster default' : `broker ${resource.name}`;
}

function checked(outcome: BrokerConfigOutcome | undefined): void {
  if (outcome === undefined) throw new Error('the broker gave no result');
  if (outcome.error !== null) throw outcome.error;
}

/** `config set`: KEY=VALUE pairs on one resource, all or nothing. */
export async function configSet(bootstrap: string, resource: BrokerConfigResource, assignments: readonly string[]): Promise<void> {
  const ops = assignments.map((assignment) => {
    const at = assignment.indexOf('=');
    if (at <= 0) throw new Error(`config set: expected key=value, got '${assignment}'`);
    return { key: assignment.slice(0, at).trim(), op: 'set' as const, value: assignment.slice(at + 1) };
  });
  await withAdmin(bootstrap, async (admin) => {
    checked((await admin.incrementalAlterConfigs([{ resource, ops }]))[0]);
    printLine(`Set ${ops.map((op) => `${op.key}=${op.value.trim()}`).join(', ')} on ${describeResource(resource)}.`);
  });
}

/** `config delete`: keys back to the next level down (broker → cluster default → the node's config). */
export async function configDelete(bootstrap: string, resource: BrokerConfigResource, keys: readonly string[]): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    checked((await admin.incrementalAlterConfigs([{ resource, ops: keys.map((key) => ({ key, op: 'delete' as const })) }]))[0]);
    printLine(`Deleted ${keys.join(', ')} on ${describeResource(resource)}.`);
  });
}

/**
 * `config describe`: the dynamic values in force. For a broker, its own values and the cluster
 * defaults it inherits (a broker value wins); without a resource, every resource that has one.
 */
export async function configDescribe(bootstrap: string, resource: BrokerConfigResource | null, format: OutputFormat): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    let described: DynamicBrokerConfigs[];
    if (resource === null) described = await admin.describeDynamicConfigs();
    else if (resource.type === 'cluster') described = await admin.describeDynamicConfigs([resource]);
    else described = await admin.describeDynamicConfigs([resource, { type: 'cluster', name: '' }]);
    const rows = dynamicRows(resource, described);
    if (format === 'json') {
      printJson({ configs: rows });
      return;
    }
    if (rows.length === 0) {
      printLine(`No dynamic config is set${resource === null ? '' : ` for ${describeResource(resource)}`}: ${resource?.type === 'broker' ? 'the broker runs with its own configuration' : 'every broker runs with its own configuration'}.`);
      return;
    }
    printLine(renderTable(['RESOURCE', 'KEY', 'VALUE', 'SOURCE'], rows.map((row) => [row.resource, row.key, row.value, row.source])));
  });
}

interface DynamicRow {
  resource: string;
  key: string;
  value: string;
  source: 'dynamic broker config' | 'dynamic cluster default';
}

function dynamicRows(asked: BrokerConfigResource | null, described: readonly DynamicBrokerConfigs[]): DynamicRow[] {
  const rows: DynamicRow[] = [];
  const own = new Set<string>();
  for (const entry of described) {
    const isDefault = entry.resource.type === 'cluster';
    const label = asked?.type === 'broker' ? `broker ${asked.name}` : isDefault ? 'cluster' : `broker ${entry.resource.name}`;
    for (const [key, value] of Object.entries(entry.configs).sort()) {
      // Describing a broker: a cluster default it overrides is not in force there.
      if (asked?.type === 'broker' && isDefault && own.has(key)) continue;
      if (!isDefault) own.add(key);
      rows.push({ resource: label, key, value, source: isDefault ? 'dynamic cluster default' : 'dynamic broker config' });
    }
  }
  return rows;
}
