// Fetch (key 1), versions 4-13: v4 is the first that answers with record batch v2 and knows
// isolation levels. v12 is the first flexible version (tagged ClusterId, DivergingEpoch,
// CurrentLeader, SnapshotId). v13 names topics by id instead of name (KIP-516).
import type { MessageSpec } from '../schema.js';

export const FETCH_REQUEST = {
  name: 'FetchRequest',
  type: 'request',
  apiKey: 1,
  validVersions: '4-13',
  flexibleVersions: '12+',
  fields: [
    { name: 'ClusterId', type: 'string', versions: '12+', nullableVersions: '12+', default: null, taggedVersions: '12+', tag: 0, ignorable: true },
    { name: 'ReplicaId', type: 'int32', versions: '0-14', default: -1 },
    { name: 'MaxWaitMs', type: 'int32', versions: '0+' },
    { name: 'MinBytes', type: 'int32', versions: '0+' },
    { name: 'MaxBytes', type: 'int32', versions: '3+', default: 0x7fffffff, ignorable: true },
    { name: 'IsolationLevel', type: 'int8', versions: '4+', default: 0, ignorable: true },
    { name: 'SessionId', type: 'int32', versions: '7+', default: 0, ignorable: true },
    { name: 'SessionEpoch', type: 'int32', versions: '7+', default: -1, ignorable: true },
    {
      name: 'Topics', type: '[]FetchTopic', versions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0-12', ignorable: true },
        { name: 'TopicId', type: 'uuid', versions: '13+', ignorable: true },
        {
          name: 'Partitions', type: '[]FetchPartition', versions: '0+',
          fields: [
            { name: 'Partition', type: 'int32', versions: '0+' },
            { name: 'CurrentLeaderEpoch', type: 'int32', versions: '9+', default: -1, ignorable: true },
            { name: 'FetchOffset', type: 'int64', versions: '0+' },
            { name: 'LastFetchedEpoch', type: 'int32', versions: '12+', default: -1, ignorable: false },
            { name: 'LogStartOffset', type: 'int64', versions: '5+', default: -1n, ignorable: true },
            { name: 'PartitionMaxBytes', type: 'int32', versions: '0+' },
          ],
        },
      ],
    },
    {
      name: 'ForgottenTopicsData', type: '[]ForgottenTopic', versions: '7+', ignorable: false,
      fields: [
        { name: 'Topic', type: 'string', versions: '7-12', ignorable: true },
        { name: 'TopicId', type: 'uuid', versions: '13+', ignorable: true },
        { name: 'Partitions', type: '[]int32', versions: '7+' },
      ],
    },
    { name: 'RackId', type: 'string', versions: '11+', default: '', ignorable: true },
  ],
} as const satisfies MessageSpec;

export const FETCH_RESPONSE = {
  name: 'FetchResponse',
  type: 'response',
  apiKey: 1,
  validVersions: '4-13',
  flexibleVersions: '12+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'ErrorCode', type: 'int16', versions: '7+', ignorable: true },
    { name: 'SessionId', type: 'int32', versions: '7+', default: 0, ignorable: false },
    {
      name: 'Responses', type: '[]FetchableTopicResponse', versions: '0+',
      fields: [
        { name: 'Topic', type: 'string', versions: '0-12', ignorable: true },
        { name: 'TopicId', type: 'uuid', versions: '13+', ignorable: true },
        {
          name: 'Partitions', type: '[]PartitionData', versions: '0+',
          fields: [
            { name: 'PartitionIndex', type: 'int32', versions: '0+' },
            { name: 'ErrorCode', type: 'int16', versions: '0+' },
            { name: 'HighWatermark', type: 'int64', versions: '0+' },
            { name: 'LastStableOffset', type: 'int64', versions: '4+', default: -1n, ignorable: true },
            { name: 'LogStartOffset', type: 'int64', versions: '5+', default: -1n, ignorable: true },
            {
              name: 'DivergingEpoch', type: 'EpochEndOffset', versions: '12+', taggedVersions: '12+', tag: 0,
              fields: [
                { name: 'Epoch', type: 'int32', versions: '12+', default: -1 },
                { name: 'EndOffset', type: 'int64', versions: '12+', default: -1n },
              ],
            },
            {
              name: 'CurrentLeader', type: 'LeaderIdAndEpoch', versions: '12+', taggedVersions: '12+', tag: 1,
              fields: [
                { name: 'LeaderId', type: 'int32', versions: '12+', default: -1 },
                { name: 'LeaderEpoch', type: 'int32', versions: '12+', default: -1 },
              ],
            },
            {
              name: 'SnapshotId', type: 'SnapshotId', versions: '12+', taggedVersions: '12+', tag: 2,
              fields: [
                { name: 'EndOffset', type: 'int64', versions: '0+', default: -1n },
                { name: 'Epoch', type: 'int32', versions: '0+', default: -1 },
              ],
            },
            {
              name: 'AbortedTransactions', type: '[]AbortedTransaction', versions: '4+', nullableVersions: '4+', ignorable: true,
              fields: [
                { name: 'ProducerId', type: 'int64', versions: '4+' },
                { name: 'FirstOffset', type: 'int64', versions: '4+' },
              ],
            },
            { name: 'PreferredReadReplica', type: 'int32', versions: '11+', default: -1, ignorable: false },
            { name: 'Records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
} as const satisfies MessageSpec;
