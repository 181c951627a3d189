export { Admin, type NewTopic, type PartitionDescription, type TopicDescription, type ClusterDescription, type OffsetSpec, type ListedOffset,
  type ClusterStatus, type ClusterNodeStatus, type ClusterPartitionStatus, type MovedLeader, type UnmovedLeader, type PreferredLeaderElection,
  type ReplicaRebalance, type PlannedReplicaMove, type BrokerDecommissionOutcome } from './admin.js';
export { type GroupListing, type GroupDescription, type GroupMemberDescription, type GroupOffset, type GroupOffsetChange } from './admin.js';
export { type BrokerConfigResource, type BrokerConfigOperation, type BrokerConfigChange, type BrokerConfigOutcome, type DynamicBrokerConfigs } from './admin.js';
export { type PartitionReassignmentTarget, type PartitionReassignmentOutcome, type OngoingPartitionReassignment, type ReassignmentProgress, type AddingReplicaProgress } from './admin.js';
export { type GroupCoordinator } from './group/coordinator.js';
export { type GroupCalls } from './connection.js';
export { encodeAssignment, encodeSubscription, decodeAssignment, decodeSubscription, CONSUMER_PROTOCOL_TYPE, type TopicPartitions, type Assignment, type Subscription } from './group/consumerProtocol.js';
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata } from './producer.js';
export { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartition, type RebalanceListener, type CommittedOffset, type OffsetToCommit } from './consumer.js';
export { murmur2, toPositive, defaultPartition } from './murmur2.js';
export { type ClientOptions, DEFAULT_PORT } from './options.js';
