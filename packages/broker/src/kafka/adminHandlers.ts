// CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs and IncrementalAlterConfigs: admin
// requests a Kafka client may send to any broker. Topic and dynamic config changes go through
// TopicAdmin and configAdmin to the active controller (the gRPC door's path); configs are described
// from the broker's config and the topic overrides and dynamic broker configs in the metadata image.
import { DYNAMIC_BROKER_CONFIG_KEYS, TOPIC_CONFIG, dynamicBrokerKeyError, errorCode, type ConfigDescription } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import { alterDynamicConfigs, type DynamicConfigChange } from '../configAdmin.js';
import type { TopicToCreate } from '../topicAdmin.js';
import type { KafkaDoorBroker, KafkaHandlers, KafkaRequestOf } from './kafkaRequestHandler.js';
import { ZERO_UUID, topicIdToUuid, uuidToTopicId } from './topicIds.js';

/** DescribeConfigs resource types. */
const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;

/** Kafka's ConfigSource: where a value comes from. */
const SOURCE_TOPIC_CONFIG = 1;
const SOURCE_DYNAMIC_BROKER_CONFIG = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG = 3;
const SOURCE_STATIC_BROKER_CONFIG = 4;
const SOURCE_DEFAULT_CONFIG = 5;

/** Kafka's ConfigType (DescribeConfigs v3+), by our config types. */
const CONFIG_TYPES: Readonly<Record<ConfigDescription['type'], number>> = { boolean: 1, string: 2, int: 3, long: 5, double: 6, list: 7 };

/** One config entry with where its value comes from, before it is shaped for a response. */
interface DescribedConfig {
  readonly name: string;
  readonly value: string | null;
  readonly source: number;
  readonly readOnly: boolean;
  readonly type: ConfigDescription['type'];
  readonly doc: string;
  /** Kafka's synonyms, most specific first: the topic override, then the broker key it falls back to. */
  readonly synonyms: ReadonlyArray<{ name: string; value: string | null; source: number }>;
}

/** Every topic config of a topic with `overrides`: the override where there is one, else the broker's value. */
export function describeTopicConfigs(broker: KafkaDoorBroker, overrides: ReadonlyMap<string, string>): DescribedConfig[] {
  return Object.entries(TOPIC_CONFIG.keys).map(([name, spec]) => {
    const fallback = broker.config.topicDefault(name);
    const brokerSynonym = { name: fallback.brokerKey, value: fallback.value, source: fallback.isDefault ? SOURCE_DEFAULT_CONFIG : SOURCE_STATIC_BROKER_CONFIG };
    const override = overrides.get(name);
    const common = { name, readOnly: false, type: spec.type, doc: spec.doc };
    if (override === undefined) return { ...common, value: fallback.value, source: brokerSynonym.source, synonyms: [brokerSynonym] };
    return { ...common, value: override, source: SOURCE_TOPIC_CONFIG, synonyms: [{ name, value: override, source: SOURCE_TOPIC_CONFIG }, brokerSynonym] };
  });
}

/**
 * This broker's configs: each key's static value (the node's config or the default), except the
 * dynamic keys, which a broker-level value (source 2) or the cluster default (3) in the metadata
 * overrides, with the levels below as synonyms. Only the dynamic keys are writable (readOnly false).
 */
function describeBrokerConfigs(broker: KafkaDoorBroker, image: MetadataImage): DescribedConfig[] {
  const perBroker = image.config('broker', String(broker.nodeId));
  const clusterDefault = image.config('cluster', '');
  return broker.config.describe().map((entry) => {
    const staticSource = entry.isDefault ? SOURCE_DEFAULT_CONFIG : SOURCE_STATIC_BROKER_CONFIG;
    const dynamic = DYNAMIC_BROKER_CONFIG_KEYS.includes(entry.name);
    const synonyms = [
      ...(dynamic && perBroker.has(entry.name) ? [{ name: entry.name, value: perBroker.get(entry.name)!, source: SOURCE_DYNAMIC_BROKER_CONFIG }] : []),
      ...(dynamic && clusterDefault.has(entry.name) ? [{ name: entry.name, value: clusterDefault.get(entry.name)!, source: SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG }] : []),
      { name: entry.name, value: entry.value, source: staticSource },
    ];
    return { name: entry.name, value: synonyms[0]!.value, source: synonyms[0]!.source, readOnly: !dynamic, type: entry.type, doc: entry.doc, synonyms };
  });
}

/** The cluster-wide dynamic defaults (Kafka's BROKER resource with the empty name): only the keys set. */
function describeDynamicDefaults(broker: KafkaDoorBroker, image: MetadataImage): DescribedConfig[] {
  const described = new Map(broker.config.describe().map((entry) => [entry.name, entry]));
  return [...image.config('cluster', '')].map(([name, value]) => {
    const entry = described.get(name);
    const source = SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG;
    return { name, value, source, readOnly: false, type: entry?.type ?? 'long', doc: entry?.doc ?? '', synonyms: [{ name, value, source }] };
  });
}

/** Kafka's AlterConfigOp.OpType ids. */
const OP_SET = 0;
const OP_DELETE = 1;
const OP_APPEND = 2;
const OP_SUBTRACT = 3;

type AlterResource = KafkaRequestOf<'IncrementalAlterConfigs'>['body']['resources'][number];

/**
 * What the broker refuses before asking the controller (Kafka's ConfigAdminManager.preprocess):
 * unsupported resource types, null values to set, unknown operations and list operations on keys
 * that are not lists. null: forward it.
 */
function alterRefusal(resource: AlterResource): { name: 'INVALID_REQUEST' | 'INVALID_CONFIG'; message: string } | null {
  if (resource.resourceType === RESOURCE_TOPIC) {
    return { name: 'INVALID_REQUEST', message: `topic '${resource.resourceName}': changing topic configs at runtime is not implemented; give them when the topic is created (CreateTopics configs)` };
  }
  if (resource.resourceType !== RESOURCE_BROKER) return { name: 'INVALID_REQUEST', message: `resource type ${resource.resourceType} is not supported (4: broker)` };
  for (const config of resource.configs) {
    if (config.configOperation === OP_APPEND || config.configOperation === OP_SUBTRACT) {
      const verb = config.configOperation === OP_APPEND ? 'append' : 'subtract';
      const keyError = dynamicBrokerKeyError(config.name);
      return { name: 'INVALID_CONFIG', message: keyError ?? `config value ${verb} is not allowed for config key '${config.name}': it is not a list` };
    }
    if (config.configOperation !== OP_SET && config.configOperation !== OP_DELETE) return { name: 'INVALID_REQUEST', message: `unknown operation type ${config.configOperation} for '${config.name}'` };
    if (config.configOperation === OP_SET && config.value === null) return { name: 'INVALID_REQUEST', message: `null value not supported for: ${config.name}` };
  }
  return null;
}

function topicNameOf(image: MetadataImage, topic: { name: string | null; topicId: string }): string | undefined {
  return topic.name ?? image.topicById(uuidToTopicId(topic.topicId))?.name;
}

export function adminHandlers(broker: KafkaDoorBroker): Pick<KafkaHandlers, 'CreateTopics' | 'DeleteTopics' | 'CreatePartitions' | 'DescribeConfigs' | 'IncrementalAlterConfigs'> {
  const topics = broker.topics;
  const image = () => topics.cluster.image();
  return {
    CreateTopics: async ({ body }) => {
      const counts = new Map<string, number>();
      for (const topic of body.topics) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
      // What Kafka refuses before asking its controller; the rest goes to ours.
      const refusals = new Map<string, { errorCode: number; errorMessage: string }>();
      const toCreate: TopicToCreate[] = [];
      for (const topic of body.topics) {
        const nullConfig = topic.configs.find((config) => config.value === null);
        if (counts.get(topic.name)! > 1) refusals.set(topic.name, { errorCode: errorCode('INVALID_REQUEST'), errorMessage: `topic '${topic.name}' appears more than once in the request` });
        else if (topic.assignments.length > 0) refusals.set(topic.name, { errorCode: errorCode('INVALID_REQUEST'), errorMessage: 'replica assignments are not supported: give num_partitions and replication_factor, and the controller places the replicas' });
        else if (nullConfig !== undefined) refusals.set(topic.name, { errorCode: errorCode('INVALID_CONFIG'), errorMessage: `config '${nullConfig.name}' has a null value` });
        else toCreate.push({ name: topic.name, numPartitions: topic.numPartitions, replicationFactor: topic.replicationFactor, configs: topic.configs.map((config) => ({ name: config.name, value: config.value! })) });
      }
      const created = new Map((toCreate.length === 0 ? [] : await topics.createTopics(toCreate, body.validateOnly)).map((result) => [result.name, result]));
      return {
        throttleTimeMs: 0,
        topics: body.topics.map((topic) => {
          const result = refusals.get(topic.name) ?? created.get(topic.name);
          if (result === undefined || !('topicId' in result) || result.errorCode !== 0) {
            const failure = result ?? { errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: 'the controller gave no result for this topic' };
            return { name: topic.name, topicId: ZERO_UUID, errorCode: failure.errorCode, errorMessage: failure.errorMessage, numPartitions: -1, replicationFactor: -1, configs: [] };
          }
          // v5+: the topic's configs as created, as Kafka returns them.
          const configs = describeTopicConfigs(broker, new Map(topic.configs.map((config) => [config.name, config.value!])));
          return {
            name: topic.name,
            topicId: result.topicId === '' ? ZERO_UUID : topicIdToUuid(result.topicId),
            errorCode: 0,
            errorMessage: null,
            numPartitions: result.numPartitions,
            replicationFactor: result.replicationFactor,
            configs: configs.map((config) => ({ name: config.name, value: config.value, readOnly: config.readOnly, configSource: config.source, isSensitive: false })),
          };
        }),
      };
    },

    DeleteTopics: async ({ apiVersion, body }) => {
      // v6 names topics by name or by id; before, by name only.
      const before = image();
      const wanted = apiVersion >= 6 ? body.topics.map((topic) => ({ name: topicNameOf(before, topic) ?? null, topicId: topic.topicId })) : body.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
      const names = wanted.flatMap((topic) => (topic.name === null ? [] : [topic.name]));
      const results = new Map((names.length === 0 ? [] : await topics.deleteTopics(names)).map((result) => [result.name, result]));
      return {
        throttleTimeMs: 0,
        responses: wanted.map((topic) => {
          if (topic.name === null) return { name: null, topicId: topic.topicId, errorCode: errorCode('UNKNOWN_TOPIC_ID'), errorMessage: `no topic has id ${topic.topicId}` };
          const result = results.get(topic.name);
          const id = before.topic(topic.name)?.id;
          return {
            name: topic.name,
            topicId: id === undefined ? ZERO_UUID : topicIdToUuid(id),
            errorCode: result?.errorCode ?? errorCode('UNKNOWN_SERVER_ERROR'),
            errorMessage: result === undefined || result.errorCode === 0 ? null : result.errorMessage,
          };
        }),
      };
    },

    CreatePartitions: async ({ body }) => {
      const current = image();
      // A non-null but empty assignment list is a list of 0 assignments to Kafka (our gRPC has no
      // such thing: empty means "place them"), wrong for any topic that would grow.
      const emptyAssignments = body.topics.filter((topic) => {
        const existing = current.topic(topic.name);
        return topic.assignments !== null && topic.assignments.length === 0 && existing !== undefined && topic.count > existing.partitionCount;
      });
      const toCreate = body.topics
        .filter((topic) => !emptyAssignments.includes(topic))
        .map((topic) => ({ name: topic.name, count: topic.count, assignments: topic.assignments === null || topic.assignments.length === 0 ? null : topic.assignments.map((assignment) => assignment.brokerIds) }));
      const created = toCreate.length === 0 ? [] : await topics.createPartitions(toCreate, body.validateOnly);
      let next = 0;
      return {
        throttleTimeMs: 0,
        results: body.topics.map((topic) => {
          if (emptyAssignments.includes(topic)) {
            const additional = topic.count - current.topic(topic.name)!.partitionCount;
            return { name: topic.name, errorCode: errorCode('INVALID_REPLICA_ASSIGNMENT'), errorMessage: `attempted to add ${additional} partition(s), but 0 assignment(s) were given` };
          }
          // The controller answers each topic of the request in order.
          const result = created[next++];
          if (result === undefined) return { name: topic.name, errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: 'the controller gave no result for this topic' };
          return { name: topic.name, errorCode: result.errorCode, errorMessage: result.errorCode === 0 ? null : result.errorMessage };
        }),
      };
    },

    DescribeConfigs: async ({ apiVersion, body }) => {
      const current = image();
      return {
        throttleTimeMs: 0,
        results: body.resources.map((resource) => {
          const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
          const failed = (name: 'INVALID_REQUEST' | 'UNKNOWN_TOPIC_OR_PARTITION', message: string) => ({ ...base, errorCode: errorCode(name), errorMessage: message, configs: [] });
          let described: DescribedConfig[];
          if (resource.resourceType === RESOURCE_TOPIC) {
            if (current.topic(resource.resourceName) === undefined) return failed('UNKNOWN_TOPIC_OR_PARTITION', `topic '${resource.resourceName}' does not exist`);
            described = describeTopicConfigs(broker, current.topicConfigs(resource.resourceName));
          } else if (resource.resourceType === RESOURCE_BROKER) {
            // As a Kafka broker: its own configs by its id; the empty name is the cluster-wide
            // dynamic defaults (kafka-configs.sh --entity-default).
            if (resource.resourceName === '') described = describeDynamicDefaults(broker, current);
            else if (resource.resourceName !== String(broker.nodeId)) return failed('INVALID_REQUEST', `this is broker ${broker.nodeId}; ask broker ${resource.resourceName} for its configs`);
            else described = describeBrokerConfigs(broker, current);
          } else {
            return failed('INVALID_REQUEST', `resource type ${resource.resourceType} is not supported (2: topic, 4: broker)`);
          }
          const keys = resource.configurationKeys === null ? null : new Set(resource.configurationKeys);
          return {
            ...base,
            errorCode: 0,
            errorMessage: null,
            configs: described
              .filter((config) => keys === null || keys.has(config.name))
              .map((config) => ({
                name: config.name,
                value: config.value,
                readOnly: config.readOnly,
                // v0 says whether a value is the default; v1+ says where it comes from instead (and
                // Kafka does not let IsDefault be written to a version without it).
                ...(apiVersion === 0 ? { isDefault: config.source === SOURCE_DEFAULT_CONFIG } : { configSource: config.source }),
                isSensitive: false,
                synonyms: body.includeSynonyms ? config.synonyms.map((synonym) => ({ name: synonym.name, value: synonym.value, source: synonym.source })) : [],
                ...(apiVersion >= 3 ? { configType: CONFIG_TYPES[config.type], documentation: body.includeDocumentation ? config.doc : null } : {}),
              })),
          };
        }),
      };
    },

    IncrementalAlterConfigs: async ({ body }) => {
      const counts = new Map<string, number>();
      const key = (resource: AlterResource) => `${resource.resourceType}:${resource.resourceName}`;
      for (const resource of body.resources) counts.set(key(resource), (counts.get(key(resource)) ?? 0) + 1);
      const refusals = new Map<AlterResource, { errorCode: number; errorMessage: string }>();
      const forwarded: AlterResource[] = [];
      for (const resource of body.resources) {
        const refusal = counts.get(key(resource))! > 1 ? { name: 'INVALID_REQUEST' as const, message: 'each resource must appear at most once' } : alterRefusal(resource);
        if (refusal !== null) refusals.set(resource, { errorCode: errorCode(refusal.name), errorMessage: refusal.message });
        else forwarded.push(resource);
      }
      // BROKER with the empty name is Kafka's cluster-wide default: our 'cluster' resource.
      const changes: DynamicConfigChange[] = forwarded.map((resource) => ({
        type: resource.resourceName === '' ? 'cluster' : 'broker',
        name: resource.resourceName,
        ops: resource.configs.map((config) => ({ key: config.name, op: config.configOperation === OP_SET ? 'set' : 'delete', value: config.value })),
      }));
      const results = changes.length === 0 ? [] : await alterDynamicConfigs(topics, broker.logger, changes, body.validateOnly);
      return {
        throttleTimeMs: 0,
        responses: body.resources.map((resource) => {
          const outcome = refusals.get(resource) ?? results[forwarded.indexOf(resource)] ?? { errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: 'the controller gave no result for this resource' };
          return { errorCode: outcome.errorCode, errorMessage: outcome.errorCode === 0 ? null : outcome.errorMessage, resourceType: resource.resourceType, resourceName: resource.resourceName };
        }),
      };
    },
  };
}
