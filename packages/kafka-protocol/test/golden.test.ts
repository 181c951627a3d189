// Byte-exact messages worked out by hand from the Kafka protocol guide and the message definitions
// (field order, the classic int16/int32 prefixes, the compact N+1 unsigned varints, tagged-field
// sections, the header versions), checked in both directions: our encoder must produce exactly
// these bytes and our decoder must read them back to the same object.
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '@runnel/common';
import { FrameDecoder, decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../src/index.js';

/** Hex digits (spaces ignored) and quoted ASCII text, concatenated: `bytes('00 06', '"orders"')`. */
function bytes(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((part) => (Buffer.isBuffer(part) ? part : part.startsWith('"') ? Buffer.from(part.slice(1, -1), 'latin1') : Buffer.from(part.replaceAll(' ', ''), 'hex'))));
}

function framed(content: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(content.length);
  return Buffer.concat([size, content]);
}

function onlyFrame(frame: Buffer): Buffer {
  const frames = new FrameDecoder().push(frame);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

const batch = encodeRecordBatch([{ key: Buffer.from('k'), value: Buffer.from('hello') }], { now: 1_700_000_000_000 });

describe('golden requests', () => {
  it('ApiVersions v3 as librdkafka 2.0.2 sends it: header v2 with an int16 client id, compact strings', () => {
    const expected = bytes(
      '00 00 00 24', // size: 36
      '00 12', // api_key 18
      '00 03', // api_version 3
      '00 00 00 01', // correlation_id 1
      '00 07', '"rdkafka"', // client_id: int16 length even in header v2
      '00', // header tagged fields: none
      '0b', '"librdkafka"', // client_software_name: compact, 10 + 1
      '06', '"2.0.2"', // client_software_version: compact, 5 + 1
      '00', // body tagged fields: none
    );
    const body = { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' };
    expect(encodeRequest('ApiVersions', { apiVersion: 3, correlationId: 1, clientId: 'rdkafka' }, body)).toEqual(expected);
    expect(decodeRequest(onlyFrame(expected))).toEqual({ apiName: 'ApiVersions', apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'rdkafka', body });
  });

  it('Metadata v1 for one topic, and for all topics (a null array)', () => {
    const header = bytes('00 03', '00 01', '00 00 00 05', '00 12', '"kafka-python-2.0.2"');
    const oneTopic = framed(bytes(header, '00 00 00 01', '00 06', '"orders"'));
    const allTopics = framed(bytes(header, 'ff ff ff ff'));
    const request = { apiVersion: 1, correlationId: 5, clientId: 'kafka-python-2.0.2' };
    expect(encodeRequest('Metadata', request, { topics: [{ name: 'orders' }] })).toEqual(oneTopic);
    expect(encodeRequest('Metadata', request, { topics: null })).toEqual(allTopics);
    const decoded = decodeRequest(onlyFrame(oneTopic));
    expect(decoded.apiName === 'Metadata' && decoded.body.topics).toEqual([{ name: 'orders', topicId: '00000000-0000-0000-0000-000000000000' }]);
    const all = decodeRequest(onlyFrame(allTopics));
    expect(all.apiName === 'Metadata' && all.body).toEqual({ topics: null, allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  });

  it('Produce v3 with a record batch: the batch travels as int32-length bytes, untouched', () => {
    const expected = framed(
      bytes(
        '00 00', '00 03', '00 00 00 09', '00 07', '"rdkafka"', // header v1
        'ff ff', // transactional_id: null
        'ff ff', // acks: -1
        '00 00 75 30', // timeout_ms: 30000
        '00 00 00 01', // topic_data: 1 entry
        '00 06', '"orders"',
        '00 00 00 01', // partition_data: 1 entry
        '00 00 00 00', // index 0
        bytes(batch.length.toString(16).padStart(8, '0')), batch, // records: int32 length, then the batch
      ),
    );
    const body = { transactionalId: null, acks: -1, timeoutMs: 30000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records: batch }] }] };
    expect(encodeRequest('Produce', { apiVersion: 3, correlationId: 9, clientId: 'rdkafka' }, body)).toEqual(expected);
    const decoded = decodeRequest(onlyFrame(expected));
    expect(decoded.apiName).toBe('Produce');
    expect(decoded.body).toEqual(body);
  });

  it('JoinGroup v5: static membership field present (null), the last classic version', () => {
    const subscription = bytes('00 00', '00 00 00 01', '00 06', '"orders"', 'ff ff ff ff'); // consumer protocol v0
    const expected = framed(
      bytes(
        '00 0b', '00 05', '00 00 00 03', '00 0d', '"consumer-g1-1"', // header v1
        '00 02', '"g1"', // group_id
        '00 00 af c8', // session_timeout_ms 45000
        '00 04 93 e0', // rebalance_timeout_ms 300000
        '00 00', // member_id ""
        'ff ff', // group_instance_id null
        '00 08', '"consumer"', // protocol_type
        '00 00 00 01', // protocols: 1 entry
        '00 05', '"range"',
        '00 00 00 12', subscription, // metadata: int32 length 18
      ),
    );
    const body = { groupId: 'g1', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: subscription }], reason: null };
    expect(encodeRequest('JoinGroup', { apiVersion: 5, correlationId: 3, clientId: 'consumer-g1-1' }, body)).toEqual(expected);
    expect(decodeRequest(onlyFrame(expected)).body).toEqual(body);
  });

  it('CreateTopics v5: flexible, with compact arrays, strings and a tagged-field byte per struct', () => {
    const expected = framed(
      bytes(
        '00 13', '00 05', '00 00 00 02', '00 0d', '"adminclient-1"', '00', // header v2
        '02', // topics: 1 entry (compact: 1 + 1)
        '07', '"orders"',
        '00 00 00 03', // num_partitions 3
        'ff ff', // replication_factor -1: the broker's default
        '01', // assignments: none
        '02', // configs: 1 entry
        '0f', '"cleanup.policy"',
        '08', '"compact"',
        '00', // config's tagged fields
        '00', // topic's tagged fields
        '00 00 75 30', // timeout_ms 30000
        '00', // validate_only false
        '00', // body tagged fields
      ),
    );
    const body = { topics: [{ name: 'orders', numPartitions: 3, replicationFactor: -1, assignments: [], configs: [{ name: 'cleanup.policy', value: 'compact' }] }], timeoutMs: 30000, validateOnly: false };
    expect(encodeRequest('CreateTopics', { apiVersion: 5, correlationId: 2, clientId: 'adminclient-1' }, body)).toEqual(expected);
    expect(decodeRequest(onlyFrame(expected)).body).toEqual(body);
  });
});

describe('golden responses', () => {
  it('ApiVersions v3: response header v0 (no tagged fields) although the body is flexible', () => {
    const expected = framed(
      bytes(
        '00 00 00 07', // correlation_id; no header tagged-field byte
        '00 00', // error_code
        '03', // api_keys: 2 entries
        '00 00', '00 03', '00 09', '00', // Produce 3-9, entry's tagged fields
        '00 12', '00 00', '00 03', '00', // ApiVersions 0-3
        '00 00 00 00', // throttle_time_ms
        '00', // tagged fields: none (all four tagged fields at their defaults)
      ),
    );
    const apiKeys = [{ apiKey: 0, minVersion: 3, maxVersion: 9 }, { apiKey: 18, minVersion: 0, maxVersion: 3 }];
    expect(encodeResponse('ApiVersions', 3, 7, { errorCode: 0, apiKeys })).toEqual(expected);
    expect(decodeResponse('ApiVersions', 3, expected.subarray(4))).toEqual({
      correlationId: 7,
      body: { errorCode: 0, apiKeys, throttleTimeMs: 0, supportedFeatures: [], finalizedFeaturesEpoch: -1n, finalizedFeatures: [], zkMigrationReady: false },
    });
  });

  it('Fetch v12: flexible, with a tagged CurrentLeader struct inside a partition', () => {
    const expected = framed(
      bytes(
        '00 00 00 0b', '00', // response header v1: correlation_id 11, tagged fields
        '00 00 00 00', // throttle_time_ms
        '00 00', // error_code
        '00 00 00 2a', // session_id 42
        '02', // responses: 1 entry
        '07', '"orders"', // topic
        '02', // partitions: 1 entry
        '00 00 00 00', // partition_index
        '00 00', // error_code
        '00 00 00 00 00 00 00 64', // high_watermark 100
        '00 00 00 00 00 00 00 64', // last_stable_offset 100
        '00 00 00 00 00 00 00 00', // log_start_offset 0
        '00', // aborted_transactions: null (compact 0)
        'ff ff ff ff', // preferred_read_replica -1
        (batch.length + 1).toString(16).padStart(2, '0'), batch, // records: compact, length + 1
        '01', // partition's tagged fields: 1
        '01', '09', // tag 1 (CurrentLeader), 9 bytes
        '00 00 00 01', '00 00 00 05', '00', // leader_id 1, leader_epoch 5, the struct's own tagged fields
        '00', // topic's tagged fields
        '00', // body tagged fields
      ),
    );
    expect(batch.length + 1).toBeLessThan(128); // so its compact length is the single byte written above
    const partition = {
      partitionIndex: 0,
      errorCode: 0,
      highWatermark: 100n,
      lastStableOffset: 100n,
      logStartOffset: 0n,
      divergingEpoch: { epoch: -1, endOffset: -1n },
      currentLeader: { leaderId: 1, leaderEpoch: 5 },
      snapshotId: { endOffset: -1n, epoch: -1 },
      abortedTransactions: null,
      preferredReadReplica: -1,
      records: batch,
    };
    const body = { throttleTimeMs: 0, errorCode: 0, sessionId: 42, responses: [{ topic: 'orders', partitions: [partition] }] };
    expect(encodeResponse('Fetch', 12, 11, body)).toEqual(expected);
    // A field v12 lacks (v13's topic id) decodes as its default.
    expect(decodeResponse('Fetch', 12, expected.subarray(4))).toEqual({ correlationId: 11, body: { ...body, responses: [{ ...body.responses[0], topicId: '00000000-0000-0000-0000-000000000000' }] } });
  });

  it('Metadata v1: brokers with a null rack, controller id, internal flag', () => {
    const expected = framed(
      bytes(
        '00 00 00 05', // response header v0
        '00 00 00 01', // brokers: 1 entry
        '00 00 00 01', '00 09', '"localhost"', '00 00 23 84', 'ff ff', // node 1, localhost:9092, rack null
        '00 00 00 01', // controller_id 1
        '00 00 00 01', // topics: 1 entry
        '00 00', '00 06', '"orders"', '00', // error_code, name, is_internal false
        '00 00 00 01', // partitions: 1 entry
        '00 00', '00 00 00 00', '00 00 00 01', // error_code, partition_index 0, leader_id 1
        '00 00 00 01', '00 00 00 01', // replica_nodes [1]
        '00 00 00 01', '00 00 00 01', // isr_nodes [1]
      ),
    );
    const body = {
      brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }],
      controllerId: 1,
      topics: [{ errorCode: 0, name: 'orders', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1] }] }],
    };
    expect(encodeResponse('Metadata', 1, 5, body)).toEqual(expected);
    const decoded = decodeResponse('Metadata', 1, expected.subarray(4)).body;
    expect(decoded.brokers).toEqual(body.brokers);
    expect(decoded.clusterId).toBeNull(); // v2+, so its default
    expect(decoded.topics[0]!.partitions[0]).toMatchObject({ leaderId: 1, leaderEpoch: -1, offlineReplicas: [] });
  });
});
