import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MetadataRecordError, decodeRecord, encodeRecord, type MetadataRecord } from '../src/index.js';

const samples: MetadataRecord[] = [
  { type: 'RegisterBroker', brokerId: 1, incarnationId: 'abc', listeners: [{ name: 'PLAINTEXT', host: 'h1', port: 9092 }], rack: 'r1' },
  { type: 'RegisterBroker', brokerId: 0, incarnationId: 'x', listeners: [], rack: null },
  { type: 'FenceBroker', brokerId: 2, brokerEpoch: 17 },
  { type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 17 },
  { type: 'Topic', name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAQ' },
  { type: 'Partition', topicId: 't', partition: 3, replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { type: 'PartitionChange', topicId: 't', partition: 3, leader: -1, isr: [2], leaderEpoch: 4, partitionEpoch: 9 },
  { type: 'PartitionChange', topicId: 't', partition: 3, leader: 2, isr: [2], leaderEpoch: 4, partitionEpoch: 9, replicas: [2, 4, 5] },
  { type: 'RemoveTopic', topicId: 't' },
  { type: 'Config', resourceType: 'topic', resourceName: 'orders', name: 'retention.ms', value: '1000' },
  { type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: null },
];

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('metadata record codec', () => {
  it('round-trips every record type', () => {
    for (const record of samples) expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it('encodes canonically: field order does not depend on how the object was built', () => {
    const a = encodeRecord({ type: 'FenceBroker', brokerId: 2, brokerEpoch: 17 });
    const b = encodeRecord({ brokerEpoch: 17, brokerId: 2, type: 'FenceBroker' } as MetadataRecord);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(new TextDecoder().decode(a)).toBe('{"v":1,"type":"FenceBroker","brokerId":2,"brokerEpoch":17}');
  });

  it('round-trips arbitrary partition records', () => {
    const ids = fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(ids, fc.string({ minLength: 1, maxLength: 30 }), fc.nat(), fc.nat(), fc.nat(), (replicas, topicId, partition, leaderEpoch, partitionEpoch) => {
        const record: MetadataRecord = { type: 'Partition', topicId, partition: partition % 2 ** 31, replicas, isr: replicas.slice(0, 1), leader: replicas[0]!, leaderEpoch: leaderEpoch % 2 ** 31, partitionEpoch: partitionEpoch % 2 ** 31 };
        expect(decodeRecord(encodeRecord(record))).toEqual(record);
      }),
    );
  });

  it.each([
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0xfd])],
    ['not JSON', text('{"v":1,')],
    ['not an object', text('[1,2]')],
    ['a newer version', text('{"v":2,"type":"RemoveTopic","topicId":"t"}')],
    ['no version', text('{"type":"RemoveTopic","topicId":"t"}')],
    ['an unknown type', text('{"v":1,"type":"Explode"}')],
    ['an unknown field', text('{"v":1,"type":"RemoveTopic","topicId":"t","extra":1}')],
    ['a missing field', text('{"v":1,"type":"FenceBroker","brokerId":1}')],
    ['a negative broker id', text('{"v":1,"type":"FenceBroker","brokerId":-1,"brokerEpoch":0}')],
    ['a fractional epoch', text('{"v":1,"type":"FenceBroker","brokerId":1,"brokerEpoch":0.5}')],
    ['duplicate replicas', text('{"v":1,"type":"Partition","topicId":"t","partition":0,"replicas":[1,1],"isr":[1],"leader":1,"leaderEpoch":0,"partitionEpoch":0}')],
    ['an empty ISR', text('{"v":1,"type":"PartitionChange","topicId":"t","partition":0,"leader":-1,"isr":[],"leaderEpoch":0,"partitionEpoch":1}')],
    ['a leader below -1', text('{"v":1,"type":"PartitionChange","topicId":"t","partition":0,"leader":-2,"isr":[1],"leaderEpoch":0,"partitionEpoch":1}')],
    ['a bad resource type', text('{"v":1,"type":"Config","resourceType":"group","resourceName":"g","name":"k","value":"v"}')],
    ['a listener without a port', text('{"v":1,"type":"RegisterBroker","brokerId":1,"incarnationId":"i","listeners":[{"name":"a","host":"h"}],"rack":null}')],
  ])('rejects %s with a clear error', (_label, bytes) => {
    expect(() => decodeRecord(bytes)).toThrow(MetadataRecordError);
  });

  it('names the field at fault', () => {
    expect(() => decodeRecord(text('{"v":1,"type":"FenceBroker","brokerId":"7","brokerEpoch":0}'))).toThrow(/FenceBroker: field 'brokerId' must be an integer/);
  });

  it('rejects random bytes and random JSON without crashing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeRecord(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(MetadataRecordError);
        }
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(() => decodeRecord(text(JSON.stringify(value) ?? 'null'))).toThrow(MetadataRecordError);
      }),
    );
  });

  it('refuses to encode an invalid record', () => {
    expect(() => encodeRecord({ type: 'Partition', topicId: 't', partition: 0, replicas: [], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 })).toThrow(
      /replicas/,
    );
  });
});
