export { Admin, type NewTopic, type PartitionDescription, type TopicDescription, type ClusterDescription, type OffsetSpec, type ListedOffset,
  type ClusterStatus, type ClusterNodeStatus, type ClusterPartitionStatus, type MovedLeader, type UnmovedLeader, type PreferredLeaderElection } from './admin.js';
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata } from './producer.js';
export { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartition } from './consumer.js';
export { murmur2, toPositive, defaultPartition } from './murmur2.js';
export { type ClientOptions, DEFAULT_PORT } from './options.js';
