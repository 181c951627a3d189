// meta.properties, as in Kafka: which node and cluster a log directory belongs to. Starting a
// node on another node's directory is refused, because it would serve that node's data as its own.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProperties } from '@runnel/common';

export interface MetaProperties {
  nodeId: number;
  clusterId: string;
}

/** A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding. */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * `configuredClusterId` (the cluster.id key) is written on first start and must match afterwards:
 * a node pointed at another cluster's data refuses to start.
 */
export function loadOrCreateMetaProperties(logDir: string, nodeId: number, configuredClusterId: string | null = null): MetaProperties {
  const path = join(logDir, 'meta.properties');
  if (!existsSync(path)) {
    const meta = { nodeId, clusterId: configuredClusterId ?? newClusterId() };
    writeFileSync(path, `# Written by Runnel on first start; do not edit.\nversion=1\nnode.id=${nodeId}\ncluster.id=${meta.clusterId}\n`);
    return meta;
  }
  const values = parseProperties(readFileSync(path, 'utf8'), path);
  const storedNodeId = Number(values['node.id']);
  const clusterId = values['cluster.id'];
  if (!Number.isInteger(storedNodeId) || clusterId === undefined) throw new Error(`${path} is missing node.id or cluster.id`);
  if (storedNodeId !== nodeId) {
    throw new Error(`${path} belongs to node ${storedNodeId}, but this node is configured as node.id=${nodeId}`);
  }
  if (configuredClusterId !== null && configuredClusterId !== clusterId) {
    throw new Error(`${path} belongs to cluster ${clusterId}, but this node is configured with cluster.id=${configuredClusterId}`);
  }
  return { nodeId, clusterId };
}
