// ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments: the partition-level
// admin requests a Kafka client (kafka-leader-election.sh, kafka-reassign-partitions.sh,
// Admin.electLeaders / alterPartitionReassignments) sends to any broker; forwarded through
// TopicAdmin to the active controller, the gRPC door's path.
import { errorCode } from '@runnel/common';
import type { KafkaDoorBroker, KafkaHandlers } from './kafkaRequestHandler.js';

/** Kafka's ElectionType values. */
const ELECTION_TYPES: Readonly<Record<number, 'preferred' | 'unclean'>> = { 0: 'preferred', 1: 'unclean' };

export function partitionHandlers(broker: KafkaDoorBroker): Pick<KafkaHandlers, 'ElectLeaders' | 'AlterPartitionReassignments' | 'ListPartitionReassignments'> {
  return {
    ElectLeaders: async ({ apiVersion, body }) => {
      // v0 has no election type: it is always a preferred election.
      const electionType = apiVersion === 0 ? 'preferred' : ELECTION_TYPES[body.electionType];
      const named = body.topicPartitions?.map((entry) => ({ topic: entry.topic, partitions: entry.partitions })) ?? null;
      if (electionType === undefined) {
        const failed = { errorCode: errorCode('INVALID_REQUEST'), errorMessage: `unknown election type ${body.electionType} (0 preferred, 1 unclean)` };
        return {
          throttleTimeMs: 0,
          errorCode: failed.errorCode,
          replicaElectionResults: (named ?? []).map(({ topic, partitions }) => ({ topic, partitionResult: partitions.map((partitionId) => ({ partitionId, ...failed })) })),
        };
      }
      const results = await broker.topics.electLeaders(electionType, named);
      return {
        throttleTimeMs: 0,
        errorCode: results.error.errorCode,
        replicaElectionResults: results.topics.map((topic) => ({
          topic: topic.topic,
          partitionResult: topic.partitions.map((result) => ({
            partitionId: result.partition,
            errorCode: result.errorCode,
            errorMessage: result.errorCode === 0 ? null : result.errorMessage,
          })),
        })),
      };
    },

    AlterPartitionReassignments: async ({ body }) => {
      // A null replica list cancels that partition's move (KIP-455).
      const items = body.topics.flatMap((topic) => topic.partitions.map((partition) => ({ topic: topic.name, partition: partition.partitionIndex, replicas: partition.replicas })));
      const results = await broker.topics.alterPartitionReassignments(items);
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        responses: body.topics.map((topic) => ({
          name: topic.name,
          partitions: topic.partitions.map((partition) => {
            const result = results.find((candidate) => candidate.topic === topic.name && candidate.partition === partition.partitionIndex);
            const code = result?.errorCode ?? errorCode('UNKNOWN_SERVER_ERROR');
            return { partitionIndex: partition.partitionIndex, errorCode: code, errorMessage: code === 0 ? null : (result?.errorMessage ?? 'no answer for this partition') };
          }),
        })),
      };
    },

    ListPartitionReassignments: async ({ body }) => {
      // Null topics: every moving partition. Named ones: those of them that move (unknown topics are
      // left out, as KRaft does).
      const refs = body.topics?.flatMap((topic) => topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition }))) ?? [];
      if (body.topics !== null && refs.length === 0) return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, topics: [] };
      const listed = await broker.topics.listPartitionReassignments(refs);
      if (listed.errorCode !== 0) return { throttleTimeMs: 0, errorCode: listed.errorCode, errorMessage: listed.errorMessage, topics: [] };
      const byTopic = new Map<string, typeof listed.reassignments>();
      for (const moving of listed.reassignments) byTopic.set(moving.topic, [...(byTopic.get(moving.topic) ?? []), moving]);
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        topics: [...byTopic].map(([name, partitions]) => ({
          name,
          partitions: partitions.map((moving) => ({
            partitionIndex: moving.partition,
            replicas: [...moving.replicas],
            addingReplicas: [...moving.addingReplicas],
            removingReplicas: [...moving.removingReplicas],
          })),
        })),
      };
    },
  };
}
