// Produce, Fetch, ListOffsets and OffsetForLeaderEpoch: Kafka's record APIs onto the ReplicaManager
// calls the gRPC door makes. Record batches pass through as the bytes the client sent and the log
// stores; the log rewrites each batch's base offset and leader epoch in place, as for gRPC.
import { errorCode } from '@runnel/common';
import type { FetchInput, FetchResult } from '../replicaManager.js';
import type { KafkaDoorBroker, KafkaHandlers } from './kafkaRequestHandler.js';
import { flatten } from './nesting.js';
import { uuidToTopicId } from './topicIds.js';

/** Produce v0-2 are served only to be listed (see the Produce table): their message sets are refused. */
const FIRST_RECORD_BATCH_PRODUCE_VERSION = 3;

/** The first Fetch version that names topics by id. */
const FIRST_TOPIC_ID_FETCH_VERSION = 13;

/** Fetch's isolation levels: read_committed asks for an (empty, without transactions) aborted-transaction list. */
const READ_COMMITTED = 1;

export function recordHandlers(broker: KafkaDoorBroker): Pick<KafkaHandlers, 'Produce' | 'Fetch' | 'ListOffsets' | 'OffsetForLeaderEpoch'> {
  const replicas = broker.replicas;
  return {
    Produce: async ({ apiVersion, body }) => {
      const { flat, regroup } = flatten(
        body.topicData,
        (topic) => topic.partitionData,
        (topic, partition) => ({ topic: topic.name, partition: partition.index, records: partition.records ?? Buffer.alloc(0) }),
      );
      const refuse = (code: number, errorMessage: string) => flat.map((input) => ({ ...input, errorCode: code, errorMessage, baseOffset: -1, logAppendTime: -1, logStartOffset: -1 }));
      const results =
        apiVersion < FIRST_RECORD_BATCH_PRODUCE_VERSION
          ? refuse(errorCode('UNSUPPORTED_FOR_MESSAGE_FORMAT'), `Produce v${apiVersion} carries message format v0/v1; this broker stores record batch v2 only (Produce v3+)`)
          : body.transactionalId !== null
            ? refuse(errorCode('INVALID_REQUEST'), 'transactional produce is not supported (no transactions yet)')
            : await replicas.produce(body.acks, flat, body.timeoutMs);
      if (body.acks === 0) {
        const failed = results.filter((result) => result.errorCode !== 0);
        if (failed.length === 0) return { noResponse: true, closeBecause: null };
        const first = failed[0]!;
        return { noResponse: true, closeBecause: `an acks=0 produce failed for ${failed.length} partition(s), first ${first.topic}-${first.partition}: error ${first.errorCode} ${first.errorMessage}` };
      }
      return {
        responses: regroup(results, (topic, own) => ({
          name: topic.name,
          partitionResponses: own.map((result) => ({
            index: result.partition,
            errorCode: result.errorCode,
            baseOffset: result.baseOffset,
            logAppendTimeMs: result.logAppendTime,
            logStartOffset: result.logStartOffset,
            recordErrors: [],
            errorMessage: result.errorCode === 0 ? null : result.errorMessage,
          })),
        })),
        throttleTimeMs: 0,
      };
    },

    Fetch: async ({ apiVersion, body }, client) => {
      // Fetch sessions (KIP-227) are not kept: a full fetch (epoch 0 or -1) is answered with session
      // id 0, which tells the client it has none and should go on sending full fetches; an
      // incremental one names a session we never gave out.
      if (body.sessionEpoch !== 0 && body.sessionEpoch !== -1) {
        return { throttleTimeMs: 0, errorCode: errorCode('FETCH_SESSION_ID_NOT_FOUND'), sessionId: 0, responses: [] };
      }
      // v13+ names topics by id (KIP-516): an id this cluster does not know is UNKNOWN_TOPIC_ID.
      const image = broker.topics.cluster.image();
      const nameOf = (topic: { topic: string; topicId: string }): string | undefined => (apiVersion >= FIRST_TOPIC_ID_FETCH_VERSION ? image.topicById(uuidToTopicId(topic.topicId))?.name : topic.topic);
      const { flat, regroup } = flatten(
        body.topics,
        (topic) => topic.partitions,
        (topic, partition): FetchInput => ({
          topic: nameOf(topic) ?? '',
          partition: partition.partition,
          fetchOffset: Number(partition.fetchOffset),
          partitionMaxBytes: partition.partitionMaxBytes,
          currentLeaderEpoch: partition.currentLeaderEpoch,
        }),
      );
      // Kafka answers a fetch with min bytes 0 at once (any amount satisfies it); the shared long
      // poll counts at least one byte, so such a fetch does not wait here.
      const maxWaitMs = body.minBytes <= 0 ? 0 : body.maxWaitMs;
      const known = flat.filter((input) => input.topic !== '');
      const fetched = known.length === 0 ? [] : await replicas.fetch({ maxWaitMs, minBytes: body.minBytes, maxBytes: body.maxBytes, partitions: known }, client.closed);
      const unknownTopicId: FetchResult = { topic: '', partition: -1, errorCode: errorCode('UNKNOWN_TOPIC_ID'), highWatermark: -1, logStartOffset: -1, records: Buffer.alloc(0) };
      let next = 0;
      const results = flat.map((input) => (input.topic === '' ? { ...unknownTopicId, partition: input.partition } : fetched[next++]!));
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        responses: regroup(results, (topic, own) => ({ topic: topic.topic, topicId: topic.topicId, partitions: own.map((result) => fetchedPartition(result, body.isolationLevel)) })),
      };
    },

    ListOffsets: async ({ apiVersion, body }) => {
      const { flat, regroup } = flatten(
        body.topics,
        (topic) => topic.partitions,
        (topic, partition) => ({ topic: topic.name, partition: partition.partitionIndex, timestamp: Number(partition.timestamp), currentLeaderEpoch: partition.currentLeaderEpoch }),
      );
      // No transactions: the last stable offset read_committed asks for is the high watermark.
      const results = replicas.listOffsets(flat);
      return {
        throttleTimeMs: 0,
        topics: regroup(results, (topic, own) => ({
          name: topic.name,
          partitions: own.map((result) => ({
            partitionIndex: result.partition,
            errorCode: result.errorCode,
            timestamp: result.timestamp,
            offset: result.offset,
            // Not ignorable in Kafka's schema: a version without it must not be given one.
            ...(apiVersion >= 4 ? { leaderEpoch: result.leaderEpoch } : {}),
          })),
        })),
      };
    },

    OffsetForLeaderEpoch: async ({ body }) => {
      const { flat, regroup } = flatten(
        body.topics,
        (topic) => topic.partitions,
        (topic, partition) => ({ topic: topic.topic, partition: partition.partition, currentLeaderEpoch: partition.currentLeaderEpoch, leaderEpoch: partition.leaderEpoch }),
      );
      const results = replicas.endOffsetsForLeaderEpochs(flat);
      return {
        throttleTimeMs: 0,
        topics: regroup(results, (topic, own) => ({
          topic: topic.topic,
          partitions: own.map((result) => ({ errorCode: result.errorCode, partition: result.partition, leaderEpoch: result.leaderEpoch, endOffset: result.endOffset })),
        })),
      };
    },
  };
}

/**
 * One partition of a Fetch response. Without transactions the last stable offset is the high
 * watermark (librdkafka reads read_committed by default and needs it to see the partition's end);
 * consumers always read from the leader (preferred read replica -1).
 */
function fetchedPartition(result: FetchResult, isolationLevel: number) {
  return {
    partitionIndex: result.partition,
    errorCode: result.errorCode,
    highWatermark: result.highWatermark,
    lastStableOffset: result.highWatermark,
    logStartOffset: result.logStartOffset,
    abortedTransactions: isolationLevel === READ_COMMITTED ? [] : null,
    preferredReadReplica: -1,
    records: result.records,
  };
}
