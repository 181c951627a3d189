// How whole requests and responses behave at the edges the broker will meet: header versions,
// versions and keys outside the served range, fields a version cannot carry, tagged fields.
import { describe, expect, it } from 'vitest';
import {
  API_KEYS,
  KAFKA_APIS,
  KafkaEncodeError,
  KafkaProtocolError,
  SUPPORTED_APIS,
  UnsupportedApiVersionError,
  decodeMessage,
  decodeRequest,
  decodeResponse,
  encodeMessage,
  encodeRequest,
  encodeResponse,
  responseCorrelationId,
} from '../src/index.js';

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('the registry', () => {
  it('lists each API once, by ascending key, with the ranges issue 11 asks for', () => {
    expect(SUPPORTED_APIS.map(({ apiName, apiKey, minVersion, maxVersion }) => `${apiKey} ${apiName} ${minVersion}-${maxVersion}`)).toEqual([
      '0 Produce 0-9',
      '1 Fetch 4-13',
      '2 ListOffsets 1-7',
      '3 Metadata 0-12',
      '8 OffsetCommit 0-8',
      '9 OffsetFetch 0-8',
      '10 FindCoordinator 0-4',
      '11 JoinGroup 0-9',
      '12 Heartbeat 0-4',
      '13 LeaveGroup 0-5',
      '14 SyncGroup 0-5',
      '15 DescribeGroups 0-5',
      '16 ListGroups 0-4',
      '17 SaslHandshake 0-1',
      '18 ApiVersions 0-3',
      '19 CreateTopics 0-7',
      '20 DeleteTopics 0-6',
      '23 OffsetForLeaderEpoch 2-4',
      '32 DescribeConfigs 0-4',
      '37 CreatePartitions 0-3',
      '42 DeleteGroups 0-2',
      '43 ElectLeaders 0-2',
      '44 IncrementalAlterConfigs 0-1',
      '45 AlterPartitionReassignments 0-0',
      '46 ListPartitionReassignments 0-0',
      '60 DescribeCluster 0-1',
    ]);
    expect(API_KEYS.Metadata).toBe(3);
    expect(API_KEYS.DescribeCluster).toBe(60);
  });

  it('builds an ApiVersions answer straight from SUPPORTED_APIS', () => {
    const frame = encodeResponse('ApiVersions', 3, 1, { errorCode: 0, apiKeys: SUPPORTED_APIS.map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion })) });
    expect(decodeResponse('ApiVersions', 3, frame.subarray(4)).body.apiKeys).toHaveLength(26);
  });
});

describe('header versions', () => {
  it('uses request header v2 (with tagged fields) exactly for flexible versions', () => {
    // Metadata v8 is classic, v9 flexible: the header grows by its tagged-field byte, after the client id.
    const classic = encodeRequest('Metadata', { apiVersion: 8, correlationId: 1, clientId: 'c' }, { topics: [] });
    const flexible = encodeRequest('Metadata', { apiVersion: 9, correlationId: 1, clientId: 'c' }, { topics: [] });
    expect(classic.subarray(4, 15).toString('hex')).toBe('0003' + '0008' + '00000001' + '000163');
    expect(flexible.subarray(4, 16).toString('hex')).toBe('0003' + '0009' + '00000001' + '000163' + '00');
  });

  it('answers ApiVersions with response header v0 even in flexible v3, other flexible responses with v1', () => {
    const apiVersions = encodeResponse('ApiVersions', 3, 0x01020304, { errorCode: 0 });
    expect(apiVersions.subarray(4, 10).toString('hex')).toBe('01020304' + '0000'); // correlation id, then the error code at once
    const heartbeat = encodeResponse('Heartbeat', 4, 0x01020304, { errorCode: 0 });
    expect(heartbeat.subarray(4).toString('hex')).toBe('01020304' + '00' + '00000000' + '0000' + '00');
    expect(responseCorrelationId(heartbeat.subarray(4))).toBe(0x01020304);
  });

  it('reads a header with a null client id, and keeps the header tagged fields it is asked to', () => {
    const frame = encodeRequest('Heartbeat', { apiVersion: 4, correlationId: 9, clientId: null }, { groupId: 'g', generationId: 1, memberId: 'm' });
    const withTag = Buffer.concat([frame.subarray(4, 14), Buffer.from('01' + '05' + '02' + 'abcd', 'hex'), frame.subarray(15)]); // after the null client id: tag 5, 2 bytes
    const request = decodeRequest(withTag, { unknownTaggedFields: 'keep' });
    expect(request.clientId).toBeNull();
    expect(request.headerTaggedFields).toEqual([{ tag: 5, data: Buffer.from('abcd', 'hex') }]);
    expect(decodeRequest(withTag).headerTaggedFields).toBeUndefined();
  });
});

describe('requests the broker cannot serve', () => {
  it('reports an unsupported version with the header fields, so the broker can answer ApiVersions', () => {
    // ApiVersions v4 (Kafka 3.9's newest): flexible, so header v2; unknown to us.
    const frame = Buffer.from('0012' + '0004' + '0000002a' + '0003' + Buffer.from('cli').toString('hex') + '00' + '00' + '00' + '00', 'hex');
    const error = caught(() => decodeRequest(frame));
    expect(error).toBeInstanceOf(UnsupportedApiVersionError);
    expect(error).toBeInstanceOf(KafkaProtocolError);
    expect(error).toMatchObject({ apiKey: 18, apiVersion: 4, correlationId: 42, clientId: 'cli' });
    expect((error as Error).message).toBe('version 4 of API key 18 is not supported (supported: 0-3) (at byte 0)');
  });

  it('reports an unknown API key with its correlation id', () => {
    const frame = Buffer.from('0016' + '0000' + '00000007' + 'ffff', 'hex'); // key 22, InitProducerId
    expect(caught(() => decodeRequest(frame))).toMatchObject({ name: 'UnsupportedApiVersionError', apiKey: 22, correlationId: 7, clientId: undefined });
  });

  it('refuses a request with bytes after its body', () => {
    const frame = encodeRequest('Heartbeat', { apiVersion: 0, correlationId: 1, clientId: 'c' }, { groupId: 'g', generationId: 1, memberId: 'm' });
    expect(() => decodeRequest(Buffer.concat([frame.subarray(4), Buffer.from([0])]))).toThrow('1 bytes follow the end of HeartbeatRequest v0');
  });

  it('refuses a null where the version allows none, naming the field', () => {
    // Metadata v0: topics is not nullable before v1.
    const frame = Buffer.from('0003' + '0000' + '00000001' + 'ffff' + 'ffffffff', 'hex');
    expect(() => decodeRequest(frame)).toThrow('MetadataRequest v0 topics: is null, which this version does not allow (at byte 10)');
  });
});

describe('encoding', () => {
  it('drops an ignorable field the version lacks, refuses a non-ignorable one unless it is at its default', () => {
    const spec = KAFKA_APIS.Metadata.request;
    // IncludeTopicAuthorizedOperations (v8+) is not ignorable; AllowAutoTopicCreation (v4+) neither, default true.
    expect(encodeMessage(spec, 3, { topics: [], allowAutoTopicCreation: true })).toEqual(encodeMessage(spec, 3, { topics: [] }));
    const error = caught(() => encodeMessage(spec, 3, { topics: [], allowAutoTopicCreation: false }));
    expect(error).toBeInstanceOf(KafkaEncodeError);
    expect((error as Error).message).toBe(
      "MetadataRequest v3 allowAutoTopicCreation: version 3 lacks this field and Kafka does not let it be ignored, so it must be left at its default",
    );
    // ThrottleTimeMs (v1+) is ignorable: a v0 Heartbeat response simply leaves it out.
    expect(encodeMessage(KAFKA_APIS.Heartbeat.response, 0, { throttleTimeMs: 100, errorCode: 0 })).toEqual(Buffer.from('0000', 'hex'));
  });

  it('refuses values outside their type, naming the path', () => {
    const body = { topics: [{ name: 't', partitions: [{ partitionIndex: 2 ** 31 }] }] };
    expect(() => encodeMessage(KAFKA_APIS.OffsetCommit.response, 8, body)).toThrow('OffsetCommitResponse v8 topics[0].partitions[0].partitionIndex: 2147483648 is not a valid int32');
    expect(() => encodeMessage(KAFKA_APIS.Produce.response, 3, { responses: [{ name: 't', partitionResponses: [{ baseOffset: 2n ** 63n }] }] })).toThrow(/baseOffset: 9223372036854775808n is not a valid int64/);
    expect(() => encodeMessage(KAFKA_APIS.Produce.response, 3, { responses: [{ name: 't', partitionResponses: [{ baseOffset: 0.5 }] }] })).toThrow(/baseOffset: 0.5 is not a valid int64/);
    expect(() => encodeMessage(KAFKA_APIS.CreateTopics.response, 7, { topics: [{ name: 't', topicId: 'not-a-uuid' }] })).toThrow(/topicId: "not-a-uuid" is not a UUID/);
    expect(() => encodeMessage(KAFKA_APIS.Heartbeat.request, 0, { groupId: 'g'.repeat(40000) })).toThrow('HeartbeatRequest v0 groupId: a string of 40000 bytes is longer than 32767');
    expect(() => encodeMessage(KAFKA_APIS.JoinGroup.request, 4, { groupId: null as unknown as string })).toThrow('JoinGroupRequest v4 groupId: is null, which this version does not allow');
    expect(() => encodeMessage(KAFKA_APIS.Metadata.request, 1, { topics: {} as never })).toThrow('MetadataRequest v1 topics: expected an array, got object');
  });

  it('accepts int64 as a safe-integer number and decodes it as a bigint', () => {
    const body = { responses: [{ name: 't', partitionResponses: [{ index: 0, errorCode: 0, baseOffset: 42 }] }] };
    const decoded = decodeMessage(KAFKA_APIS.Produce.response, 3, encodeMessage(KAFKA_APIS.Produce.response, 3, body));
    expect(decoded.responses[0]!.partitionResponses[0]!.baseOffset).toBe(42n);
  });

  it('writes a tagged field only when it differs from its default', () => {
    const spec = KAFKA_APIS.Fetch.response;
    const partition = { partitionIndex: 0, records: null };
    const plain = encodeMessage(spec, 12, { responses: [{ topic: 't', partitions: [partition] }] });
    expect(encodeMessage(spec, 12, { responses: [{ topic: 't', partitions: [{ ...partition, currentLeader: { leaderId: -1, leaderEpoch: -1 } }] }] })).toEqual(plain);
    const withLeader = encodeMessage(spec, 12, { responses: [{ topic: 't', partitions: [{ ...partition, currentLeader: { leaderId: 3, leaderEpoch: -1 } }] }] });
    expect(withLeader.length).toBe(plain.length + 11); // tag, size, 4 + 4 + struct's tag count
  });

  it('refuses unknown tagged fields in a version that cannot carry them, or reusing a known tag', () => {
    const data = Buffer.from([1]);
    expect(() => encodeMessage(KAFKA_APIS.Heartbeat.response, 3, { unknownTaggedFields: [{ tag: 9, data }] })).toThrow(/version 3 is not flexible/);
    expect(() => encodeMessage(KAFKA_APIS.ApiVersions.response, 3, { unknownTaggedFields: [{ tag: 1, data }] })).toThrow(/needs a tag no field of this version uses/);
  });

  it('refuses a version outside the served range as a programming error', () => {
    expect(() => encodeMessage(KAFKA_APIS.Produce.request, 10, {})).toThrow(RangeError);
  });
});

describe('decoding tagged fields', () => {
  it('refuses a known tagged field whose value is shorter than its announced size', () => {
    // ApiVersions v3 response: error 0, no api keys, throttle 0, then tag 3 (ZkMigrationReady, a bool) claiming 2 bytes.
    const input = Buffer.from('0000' + '01' + '00000000' + '01' + '03' + '02' + '0100', 'hex');
    expect(() => decodeMessage(KAFKA_APIS.ApiVersions.response, 3, input)).toThrow('ApiVersionsResponse v3 zkMigrationReady: leaves 1 of its 2 bytes unread (at byte 11)');
  });

  it('reads tagged fields in any order, as Kafka does', () => {
    const input = Buffer.from('0000' + '01' + '00000000' + '02' + '03' + '01' + '01' + '01' + '08' + '0000000000000007', 'hex');
    expect(decodeMessage(KAFKA_APIS.ApiVersions.response, 3, input)).toMatchObject({ zkMigrationReady: true, finalizedFeaturesEpoch: 7n });
  });
});
