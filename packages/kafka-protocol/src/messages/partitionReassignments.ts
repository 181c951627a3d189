// AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), version 0 of each
// (flexible from 0): KIP-455's reassignment API.
import type { MessageSpec } from '../schema.js';

export const ALTER_PARTITION_REASSIGNMENTS_REQUEST = {
  name: 'AlterPartitionReassignmentsRequest',
  type: 'request',
  apiKey: 45,
  validVersions: '0',
  flexibleVersions: '0+',
  fields: [
    { name: 'TimeoutMs', type: 'int32', versions: '0+', default: 60000 },
    {
      name: 'Topics', type: '[]ReassignableTopic', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]ReassignablePartition', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'Replicas', type: '[]int32', versions: '0+', nullableVersions: '0+', default: null },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const ALTER_PARTITION_REASSIGNMENTS_RESPONSE = {
  name: 'AlterPartitionReassignmentsResponse',
  type: 'response',
  apiKey: 45,
  validVersions: '0',
  flexibleVersions: '0+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '0+' },
    { name: 'ErrorCode', type: 'int16', versions: '0+' },
    { name: 'ErrorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
    {
      name: 'Responses', type: '[]ReassignableTopicResponse', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]ReassignablePartitionResponse', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'ErrorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const LIST_PARTITION_REASSIGNMENTS_REQUEST = {
  name: 'ListPartitionReassignmentsRequest',
  type: 'request',
  apiKey: 46,
  validVersions: '0',
  flexibleVersions: '0+',
  fields: [
    { name: 'TimeoutMs', type: 'int32', versions: '0+', default: 60000 },
    {
      name: 'Topics', type: '[]ListPartitionReassignmentsTopics', versions: '0+', nullableVersions: '0+', default: null,
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        { name: 'PartitionIndexes', type: '[]int32', versions: '0+' },
      ],
    },
  ],
} as const satisfies MessageSpec;

export const LIST_PARTITION_REASSIGNMENTS_RESPONSE = {
  name: 'ListPartitionReassignmentsResponse',
  type: 'response',
  apiKey: 46,
  validVersions: '0',
  flexibleVersions: '0+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '0+' },
    { name: 'ErrorCode', type: 'int16', versions: '0+' },
    { name: 'ErrorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
    {
      name: 'Topics', type: '[]OngoingTopicReassignment', versions: '0+',
      fields: [
        { name: 'Name', type: 'string', versions: '0+' },
        {
          name: 'Partitions', type: '[]OngoingPartitionReassignment', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'Replicas', type: '[]int32', versions: '0+' },
            { name: 'AddingReplicas', type: '[]int32', versions: '0+' },
            { name: 'RemovingReplicas', type: '[]int32', versions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;
