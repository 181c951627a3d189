// Topic-level configs accepted by CreateTopics, validated like Kafka's LogConfig: an unknown key or
// a value out of range is INVALID_CONFIG (40) naming the key.

import { TOPIC_CONFIG, parseTopicConfigs } from '@runnel/common';

export const UNCLEAN_LEADER_ELECTION_ENABLE = 'unclean.leader.election.enable';

/**
 * null when every key is known and every value valid; otherwise the first problem found. The keys
 * and ranges are the brokers' own (TOPIC_CONFIG in @runnel/common): a config the controller accepts
 * is one every broker can run a log with.
 */
export function validateTopicConfigs(configs: Readonly<Record<string, string>>): string | null {
  for (const key of Object.keys(configs).sort()) {
    const value = configs[key];
    if (typeof value !== 'string') return `topic config '${key}' must be a string`;
    if (!TOPIC_CONFIG.has(key)) return `unknown topic config '${key}'`;
    try {
      parseTopicConfigs({ [key]: value });
    } catch (error) {
      return (error as Error).message;
    }
  }
  return null;
}

/** Kafka's legal topic names: 1..249 of [a-zA-Z0-9._-], not '.' or '..'. null when valid. */
export function validateTopicName(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return `topic name cannot be '${name}'`;
  if (name.length > 249) return `topic name is ${name.length} characters, over the limit of 249`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return `topic name '${name}' contains characters other than ASCII alphanumerics, '.', '_' and '-'`;
  return null;
}

/** Names that differ only by '.' versus '_' collide in metric names; Kafka rejects the second. */
export function collisionKey(name: string): string {
  return name.replaceAll('.', '_');
}
