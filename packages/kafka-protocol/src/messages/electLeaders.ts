// ElectLeaders (key 43), versions 0-2: v1 adds ElectionType and the top-level ErrorCode; v2 is the
// first flexible version.
import type { MessageSpec } from '../schema.js';

export const ELECT_LEADERS_REQUEST = {
  name: 'ElectLeadersRequest',
  type: 'request',
  apiKey: 43,
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'ElectionType', type: 'int8', versions: '1+' },
    {
      name: 'TopicPartitions', type: '[]TopicPartitions', versions: '0+', nullableVersions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0+' },
        { name: 'Partitions', type: '[]int32', versions: '0+' },
      ],
    },
    { name: 'TimeoutMs', type: 'int32', versions: '0+', default: 60000 },
  ],
} as const satisfies MessageSpec;

export const ELECT_LEADERS_RESPONSE = {
  name: 'ElectLeadersResponse',
  type: 'response',
  apiKey: 43,
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '0+' },
    { name: 'ErrorCode', type: 'int16', versions: '1+', ignorable: false },
    {
      name: 'ReplicaElectionResults', type: '[]ReplicaElectionResult', versions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0+' },
        {
          name: 'PartitionResult', type: '[]PartitionResult', versions: '0+',
          fields: [
            { name: 'PartitionId', type: 'int32', versions: '0+' },
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'ErrorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;
