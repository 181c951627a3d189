// ElectLeaders: the partition-level admin request a Kafka client (kafka-leader-election.sh,
// Admin.electLeaders) sends to any broker; forwarded through TopicAdmin to the active controller,
// the gRPC door's path.
import { errorCode } from '@runnel/common';
import type { KafkaDoorBroker, KafkaHandlers } from './kafkaRequestHandler.js';

/** Kafka's ElectionType values. */
const ELECTION_TYPES: Readonly<Record<number, 'preferred' | 'unclean'>> = { 0: 'preferred', 1: 'unclean' };

export function partitionHandlers(broker: KafkaDoorBroker): Pick<KafkaHandlers, 'ElectLeaders'> {
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
  };
}
