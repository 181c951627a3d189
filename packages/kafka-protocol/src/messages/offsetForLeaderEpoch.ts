// OffsetForLeaderEpoch (key 23), versions 2-4: v2 adds the current leader epoch for fencing, v3
// the replica id (-2 for a consumer), v4 is the first flexible version.
import type { MessageSpec } from '../schema.js';

export const OFFSET_FOR_LEADER_EPOCH_REQUEST = {
  name: 'OffsetForLeaderEpochRequest',
  type: 'request',
  apiKey: 23,
  validVersions: '2-4',
  flexibleVersions: '4+',
  fields: [
    { name: 'ReplicaId', type: 'int32', versions: '3+', default: -2, ignorable: true },
    {
      name: 'Topics', type: '[]OffsetForLeaderTopic', versions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]OffsetForLeaderPartition', versions: '0+',
          fields: [
            { name: 'Partition', type: 'int32', versions: '0+' },
            { name: 'CurrentLeaderEpoch', type: 'int32', versions: '2+', default: -1, ignorable: true },
            { name: 'LeaderEpoch', type: 'int32', versions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const OFFSET_FOR_LEADER_EPOCH_RESPONSE = {
  name: 'OffsetForLeaderEpochResponse',
  type: 'response',
  apiKey: 23,
  validVersions: '2-4',
  flexibleVersions: '4+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '2+', ignorable: true },
    {
      name: 'Topics', type: '[]OffsetForLeaderTopicResult', versions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]EpochEndOffset', versions: '0+',
          fields: [
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'Partition', type: 'int32', versions: '0+' },
            { name: 'LeaderEpoch', type: 'int32', versions: '1+', default: -1, ignorable: true },
            { name: 'EndOffset', type: 'int64', versions: '0+', default: -1n },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;
