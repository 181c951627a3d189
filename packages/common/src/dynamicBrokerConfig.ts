// Broker configs that can change while the cluster runs (Kafka's KIP-226 dynamic broker configs):
// an operator sets them per broker or as a cluster-wide default, the controller writes them to the
// metadata log, and each broker applies them when its metadata reaches the record. Every other key
// of server.properties is static: it is read once, at start.
import { BROKER_CONFIG } from './brokerConfig.js';
import { suggestion } from './config.js';

export const LEADER_REPLICATION_THROTTLED_RATE = 'leader.replication.throttled.rate';
export const FOLLOWER_REPLICATION_THROTTLED_RATE = 'follower.replication.throttled.rate';

/** The keys Runnel can change at runtime; each is a long ≥ 0 (bytes per second). */
export const DYNAMIC_BROKER_CONFIG_KEYS: readonly string[] = Object.freeze([LEADER_REPLICATION_THROTTLED_RATE, FOLLOWER_REPLICATION_THROTTLED_RATE]);

const LONG_MAX = 2n ** 63n - 1n;

/** Why `key` cannot be changed at runtime, or null when it can. */
export function dynamicBrokerKeyError(key: string): string | null {
  if (DYNAMIC_BROKER_CONFIG_KEYS.includes(key)) return null;
  if (BROKER_CONFIG.has(key)) {
    return `'${key}' is a static broker config and cannot be changed at runtime: set it in the node's configuration (server.properties, RUNNEL_* or --set) and restart the node; dynamic keys are ${DYNAMIC_BROKER_CONFIG_KEYS.join(', ')}`;
  }
  return `unknown broker config '${key}'${suggestion(key, DYNAMIC_BROKER_CONFIG_KEYS)}; dynamic keys are ${DYNAMIC_BROKER_CONFIG_KEYS.join(', ')}`;
}

/**
 * A dynamic value as the metadata log stores it (decimal digits, no sign or spaces), or an error
 * naming the key: every dynamic key is a long ≥ 0, as Kafka declares the throttled rates.
 */
export function parseDynamicBrokerValue(key: string, value: string): { readonly value: string } | { readonly error: string } {
  const keyError = dynamicBrokerKeyError(key);
  if (keyError !== null) return { error: keyError };
  const trimmed = value.trim();
  if (!/^\d{1,19}$/.test(trimmed) || BigInt(trimmed) > LONG_MAX) {
    return { error: `invalid value '${value}' for '${key}': expected a whole number of bytes per second from 0 to ${LONG_MAX}` };
  }
  return { value: BigInt(trimmed).toString() };
}
