// meta.properties, as in Kafka: which node and cluster a log directory belongs to. Starting a
// node on another node's directory is refused, because it would serve that node's data as its own.
// It is written once the node's first start has set up its roles, so its presence also means
// "this node has run before" (a controller's metadata log exists): see Node.start.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProperties } from '@runnel/common';
import { replaceFile } from '@runnel/storage';

export interface MetaProperties {
  nodeId: number;
  clusterId: string;
}

/** A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding. */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

export function metaPropertiesPath(logDir: string): string {
  return join(logDir, 'meta.properties');
}

/**
 * The log directory's meta.properties, or undefined if there is none (the node's first start).
 * `configuredClusterId` (the cluster.id key) must match the stored one: a node pointed at another
 * node's or another cluster's data refuses to start.
 */
export function readMetaProperties(logDir: string, nodeId: number, configuredClusterId: string | null = null): MetaProperties | undefined {
  const path = metaPropertiesPath(logDir);
  if (!existsSync(path)) return undefined;
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

/** Atomic and durable: a crash leaves no meta.properties or a whole one, never a torn one. */
export function writeMetaProperties(logDir: string, meta: MetaProperties): void {
  replaceFile(metaPropertiesPath(logDir), `# Written by Runnel on first start; do not edit.\nversion=1\nnode.id=${meta.nodeId}\ncluster.id=${meta.clusterId}\n`);
}
