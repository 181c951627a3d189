// ListOffsets (key 2), versions 1-7: v1 replaced v0's list of offsets with a single one (v0's
// MaxNumOffsets and OldStyleOffsets are left out). v6 is the first flexible version; v7 adds the
// max-timestamp query (timestamp -3).
import type { MessageSpec } from '../schema.js';

export const LIST_OFFSETS_REQUEST = {
  name: 'ListOffsetsRequest',
  type: 'request',
  apiKey: 2,
  validVersions: '1-7',
  flexibleVersions: '6+',
  fields: [
    { name: 'ReplicaId', type: 'int32', versions: '0+' },
    { name: 'IsolationLevel', type: 'int8', versions: '2+' },
    {
      name: 'Topics', type: '[]ListOffsetsTopic', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]ListOffsetsPartition', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'CurrentLeaderEpoch', type: 'int32', versions: '4+', default: -1, ignorable: true },
            { name: 'Timestamp', type: 'int64', versions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const LIST_OFFSETS_RESPONSE = {
  name: 'ListOffsetsResponse',
  type: 'response',
  apiKey: 2,
  validVersions: '1-7',
  flexibleVersions: '6+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '2+', ignorable: true },
    {
      name: 'Topics', type: '[]ListOffsetsTopicResponse', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]ListOffsetsPartitionResponse', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'Timestamp', type: 'int64', versions: '1+', default: -1n, ignorable: false },
            { name: 'Offset', type: 'int64', versions: '1+', default: -1n, ignorable: false },
            { name: 'LeaderEpoch', type: 'int32', versions: '4+', default: -1 },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;
