// Produce (key 0), versions 0-9. v3 is the first with transactional ids and record batch v2, the
// only record format Runnel stores; v0-2 (message sets v0/v1) are in the table because librdkafka
// 2.0 compresses with gzip, snappy and lz4 only when a broker's Produce range includes v0 — the
// broker answers them UNSUPPORTED_FOR_MESSAGE_FORMAT. v9 is the first flexible version. The
// records stay raw bytes.
import type { MessageSpec } from '../schema.js';

export const PRODUCE_REQUEST = {
  name: 'ProduceRequest',
  type: 'request',
  apiKey: 0,
  validVersions: '0-9',
  flexibleVersions: '9+',
  fields: [
    { name: 'TransactionalId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
    { name: 'Acks', type: 'int16', versions: '0+' },
    { name: 'TimeoutMs', type: 'int32', versions: '0+' },
    {
      name: 'TopicData', type: '[]TopicProduceData', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'PartitionData', type: '[]PartitionProduceData', versions: '0+',
          fields: [
            { name: 'Index', type: 'int32', versions: '0+' },
            { name: 'Records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const PRODUCE_RESPONSE = {
  name: 'ProduceResponse',
  type: 'response',
  apiKey: 0,
  validVersions: '0-9',
  flexibleVersions: '9+',
  fields: [
    {
      name: 'Responses', type: '[]TopicProduceResponse', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'PartitionResponses', type: '[]PartitionProduceResponse', versions: '0+',
          fields: [
            { name: 'Index', type: 'int32', versions: '0+' },
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'BaseOffset', type: 'int64', versions: '0+' },
            { name: 'LogAppendTimeMs', type: 'int64', versions: '2+', default: -1n, ignorable: true },
            { name: 'LogStartOffset', type: 'int64', versions: '5+', default: -1n, ignorable: true },
            {
              name: 'RecordErrors', type: '[]BatchIndexAndErrorMessage', versions: '8+', ignorable: true,
              fields: [
                { name: 'BatchIndex', type: 'int32', versions: '8+' },
                { name: 'BatchIndexErrorMessage', type: 'string', versions: '8+', nullableVersions: '8+', default: null },
              ],
            },
            { name: 'ErrorMessage', type: 'string', versions: '8+', nullableVersions: '8+', default: null, ignorable: true },
          ],
        },
      ],
    },
    { name: 'ThrottleTimeMs', type: 'int32', versions: '1+', default: 0, ignorable: true },
  ],
} as const satisfies MessageSpec;
