// `listeners` as an operator writes it, turned into what a node serves. Runnel's listener names say
// what each one is (PLAINTEXT, GRPC, REPLICATION, CONTROLLER, HTTP); a file written for Kafka names
// listeners freely and says what they are in listener.security.protocol.map and
// controller.listener.names (`INTERNAL://:9092` with `INTERNAL:PLAINTEXT` is a Kafka listener).
import { ConfigError } from './config.js';

export const LISTENER_NAMES = ['PLAINTEXT', 'GRPC', 'REPLICATION', 'CONTROLLER', 'HTTP'] as const;
export type ListenerName = (typeof LISTENER_NAMES)[number];

export interface Listener {
  name: ListenerName;
  host: string;
  port: number;
}

/** A listener as served, with the name it was written under (Kafka's listener name, or Runnel's own). */
export interface ServedListener extends Listener {
  readonly writtenAs: string;
  /** Not written but derived (a broker's GRPC listener from its Kafka listener). */
  readonly derived?: true;
}

/** One `NAME://host:port` of a listener list, its name upper-cased as Kafka normalises it. */
export interface ListenerEntry {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly text: string;
}

/** What Kafka's keys say about listener names: each name's security protocol, and which ones are the controller's. */
export interface ListenerNaming {
  readonly protocols: ReadonlyMap<string, string>;
  readonly controllerNames: readonly string[];
}

/** Kafka's security protocols; only PLAINTEXT is served. */
const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
/** Runnel's gRPC and HTTP listeners: names Kafka has no protocol for. */
const RUNNEL_OWN_NAMES: readonly string[] = ['GRPC', 'REPLICATION', 'HTTP'];
/** The gRPC port a broker derives from its Kafka listener when `listeners` has no GRPC (Runnel's port plan). */
export const GRPC_PORT_OFFSET = 100;
const PORT_MAX = 65535;

export function parseListenerEntries(text: string, key: string): ListenerEntry[] {
  const entries: ListenerEntry[] = [];
  for (const entry of text.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const match = /^([A-Za-z0-9_-]+):\/\/(\[[^\]]+\]|[^:/]*):(\d+)$/.exec(entry);
    if (match === null) throw new ConfigError(`${key}: cannot parse '${entry}': expected NAME://host:port`);
    const [, name, host, port] = match as unknown as [string, string, string, string];
    const portNumber = Number(port);
    if (portNumber > PORT_MAX) throw new ConfigError(`${key}: port ${port} in '${entry}' is out of range`);
    const upper = name.toUpperCase();
    if (entries.some((listener) => listener.name === upper)) throw new ConfigError(`${key}: listener '${upper}' is given twice`);
    entries.push({ name: upper, host: host === '' ? '0.0.0.0' : host, port: portNumber, text: entry });
  }
  return entries;
}

/** listener.security.protocol.map: `NAME:PROTOCOL,…` → name → protocol (both upper-cased). */
export function parseProtocolMap(text: string, key: string): Map<string, string> {
  const protocols = new Map<string, string>();
  for (const entry of text.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const match = /^([A-Za-z0-9_-]+):([A-Za-z_]+)$/.exec(entry);
    if (match === null) throw new ConfigError(`${key}: cannot parse '${entry}': expected LISTENER_NAME:PROTOCOL`);
    const name = match[1]!.toUpperCase();
    const protocol = match[2]!.toUpperCase();
    if (!(SECURITY_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new ConfigError(`${key}: unknown security protocol '${match[2]}' in '${entry}': expected one of ${SECURITY_PROTOCOLS.join(', ')}`);
    }
    if (protocols.has(name)) throw new ConfigError(`${key}: listener '${name}' is mapped twice`);
    protocols.set(name, protocol);
  }
  return protocols;
}

/**
 * What a listener called `name` serves: the controller's listener (named in controller.listener.names),
 * one of Runnel's gRPC or HTTP listeners, or the Kafka protocol (a name mapped to PLAINTEXT). A name
 * mapped to SSL or SASL asks for what Runnel does not have, and is refused rather than served in plaintext.
 */
export function listenerRole(name: string, naming: ListenerNaming, key: string, text: string): ListenerName {
  // Kafka too takes a controller listener missing from the map as PLAINTEXT.
  const protocol = naming.protocols.get(name) ?? (naming.controllerNames.includes(name) || RUNNEL_OWN_NAMES.includes(name) ? 'PLAINTEXT' : undefined);
  if (protocol === undefined && name === 'CONTROLLER') {
    throw new ConfigError(`${key}: '${text}' is not the controller's listener: controller.listener.names names ${naming.controllerNames.join(', ')}`);
  }
  if (protocol === undefined) {
    throw new ConfigError(
      `${key}: listener '${name}' in '${text}' is none of Runnel's (${LISTENER_NAMES.join(', ')}) and listener.security.protocol.map does not map it; a Kafka listener of another name needs ${name}:PLAINTEXT there`,
    );
  }
  if (protocol !== 'PLAINTEXT') {
    throw new ConfigError(`${key}: '${text}' is a ${protocol} listener: Runnel serves plaintext listeners only (TLS and SASL are not implemented)`);
  }
  if (naming.controllerNames.includes(name)) return 'CONTROLLER';
  if (RUNNEL_OWN_NAMES.includes(name)) return name as ListenerName;
  return 'PLAINTEXT';
}

/** The listeners of a list as served: one of each kind at most. */
export function servedListeners(text: string, naming: ListenerNaming, key: string): ServedListener[] {
  const served: ServedListener[] = [];
  for (const entry of parseListenerEntries(text, key)) {
    const name = listenerRole(entry.name, naming, key, entry.text);
    const same = served.find((listener) => listener.name === name);
    if (same !== undefined) {
      throw new ConfigError(`${key}: '${same.writtenAs}' and '${entry.name}' would both be the ${name} listener; Runnel serves one of each kind`);
    }
    served.push({ name, host: entry.host, port: entry.port, writtenAs: entry.name });
  }
  return served;
}

/**
 * A broker's gRPC listener when `listeners` names only Kafka's (a server.properties written for
 * Kafka): on the Kafka listener's host, its port + 100, as Runnel's port plan puts it.
 */
export function derivedGrpcListener(kafka: Listener, key: string): ServedListener {
  const port = kafka.port === 0 ? 0 : kafka.port + GRPC_PORT_OFFSET;
  if (port > PORT_MAX) {
    throw new ConfigError(`${key}: no GRPC listener, and the Kafka listener's port ${kafka.port} + ${GRPC_PORT_OFFSET} is out of range; add GRPC://host:port to ${key}`);
  }
  return { name: 'GRPC', host: kafka.host, port, writtenAs: 'GRPC', derived: true };
}

/** `NAME://host:port,…` of served listeners, in Runnel's names. */
export function formatListeners(listeners: readonly Listener[]): string {
  return listeners.map((listener) => `${listener.name}://${listener.host}:${listener.port}`).join(',');
}
