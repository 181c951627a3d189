// Metadata and DescribeCluster: the cluster as a Kafka client sees it through PLAINTEXT listeners.
import { errorCode } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import { OFFSETS_TOPIC } from '../group/groupCoordinator.js';
import { liveBrokerEndpoints, type BrokerEndpoint, type TopicDescription } from '../topicAdmin.js';
import type { KafkaDoorBroker, KafkaHandlers } from './kafkaRequestHandler.js';
import { ZERO_UUID, topicIdToUuid, uuidToTopicId } from './topicIds.js';

/** DescribeCluster's endpoint types (v1+). */
const ENDPOINT_TYPE_BROKER = 1;
const ENDPOINT_TYPE_CONTROLLER = 2;

/**
 * The controller id clients are told. Any broker forwards admin requests to the active controller,
 * so what a client needs is a live broker to send them to: the active controller when it is one of
 * the listed brokers, else this broker (Kafka's KRaft brokers name a random live broker).
 */
export function controllerIdForClients(broker: KafkaDoorBroker, brokers: readonly BrokerEndpoint[]): number {
  const controllerId = broker.topics.cluster.controller.controllerId;
  if (brokers.some((endpoint) => endpoint.nodeId === controllerId)) return controllerId;
  return (brokers.find((endpoint) => endpoint.nodeId === broker.nodeId) ?? brokers[0])?.nodeId ?? -1;
}

function brokersOf(image: MetadataImage): BrokerEndpoint[] {
  return liveBrokerEndpoints(image, 'PLAINTEXT');
}

export function clusterHandlers(broker: KafkaDoorBroker): Pick<KafkaHandlers, 'Metadata' | 'DescribeCluster'> {
  const cluster = broker.topics.cluster;
  return {
    Metadata: async ({ apiVersion, body }) => {
      // v0: an empty list means every topic; v1+: null does, and an empty list means none.
      const everyTopic = body.topics === null || (apiVersion === 0 && body.topics.length === 0);
      const names: string[] = [];
      const unknownIds: string[] = [];
      const before = cluster.image();
      for (const wanted of body.topics ?? []) {
        if (wanted.name !== null) names.push(wanted.name);
        else {
          // v10+ may name a topic by id alone.
          const topic = before.topicById(uuidToTopicId(wanted.topicId));
          if (topic === undefined) unknownIds.push(wanted.topicId);
          else names.push(topic.name);
        }
      }
      const { image, topics } = await broker.topics.describeTopics(everyTopic ? null : names, !everyTopic && body.allowAutoTopicCreation);
      const brokers = brokersOf(image);
      const listed = new Set(brokers.map((endpoint) => endpoint.nodeId));
      return {
        throttleTimeMs: 0,
        brokers: brokers.map((endpoint) => ({ nodeId: endpoint.nodeId, host: endpoint.host, port: endpoint.port, rack: endpoint.rack })),
        clusterId: cluster.clusterId,
        controllerId: controllerIdForClients(broker, brokers),
        topics: [
          ...topics.map((topic) => metadataTopic(topic, listed)),
          ...unknownIds.map((topicId) => ({
            errorCode: errorCode('UNKNOWN_TOPIC_ID'),
            name: apiVersion >= 12 ? null : '',
            topicId,
            isInternal: false,
            partitions: [],
          })),
        ],
      };
    },

    DescribeCluster: async ({ apiVersion, body }) => {
      const brokers = brokersOf(cluster.image());
      const base = { throttleTimeMs: 0, endpointType: body.endpointType, clusterId: cluster.clusterId, controllerId: -1, brokers: [] };
      // As a Kafka broker answers: only brokers are described here (Runnel's controllers speak no Kafka).
      if (body.endpointType !== ENDPOINT_TYPE_BROKER) {
        const mismatched = body.endpointType === ENDPOINT_TYPE_CONTROLLER;
        return {
          ...base,
          errorCode: errorCode(apiVersion === 0 ? 'INVALID_REQUEST' : mismatched ? 'MISMATCHED_ENDPOINT_TYPE' : 'UNSUPPORTED_ENDPOINT_TYPE'),
          errorMessage: mismatched ? 'this is a broker\'s listener; Runnel\'s controllers serve no Kafka clients' : `unknown endpoint type ${body.endpointType}`,
        };
      }
      return {
        ...base,
        errorCode: 0,
        errorMessage: null,
        controllerId: controllerIdForClients(broker, brokers),
        brokers: brokers.map((endpoint) => ({ brokerId: endpoint.nodeId, host: endpoint.host, port: endpoint.port, rack: endpoint.rack })),
      };
    },
  };
}

/**
 * A topic in a Metadata response. A partition whose leader has no live PLAINTEXT endpoint is
 * LEADER_NOT_AVAILABLE with leader -1, as Kafka answers, so clients do not try a broker they
 * cannot reach.
 */
function metadataTopic(topic: TopicDescription, listedBrokers: ReadonlySet<number>) {
  return {
    errorCode: topic.errorCode,
    name: topic.name,
    topicId: topic.topicId === '' ? ZERO_UUID : topicIdToUuid(topic.topicId),
    isInternal: topic.name === OFFSETS_TOPIC,
    partitions: topic.partitions.map((partition) => {
      const reachable = partition.leader >= 0 && listedBrokers.has(partition.leader);
      return {
        errorCode: reachable ? partition.errorCode : errorCode('LEADER_NOT_AVAILABLE'),
        partitionIndex: partition.partition,
        leaderId: reachable ? partition.leader : -1,
        leaderEpoch: partition.leaderEpoch,
        replicaNodes: partition.replicas,
        isrNodes: partition.isr,
        offlineReplicas: partition.offlineReplicas,
      };
    }),
  };
}
