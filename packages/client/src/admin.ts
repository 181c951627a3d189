// Admin: topic management and cluster description over the unary calls of the ClientApi, and
// consumer-group administration over the GroupApi (each group's calls go to its coordinator).
import { errorCode, isRetriable, RunnelError, type ClientApi, type GroupApi } from '@runnel/common';
import { backoffMs, sleep } from './backoff.js';
import { Cluster } from './cluster.js';
import { needsMetadataRefresh } from './errors.js';
import { callCoordinator, findCoordinator, type GroupCoordinator } from './group/coordinator.js';
import { CONSUMER_PROTOCOL_TYPE, ConsumerProtocolError, decodeAssignment, type TopicPartitions } from './group/consumerProtocol.js';
import { brokerAddress, resolveClientOptions, type ClientOptions } from './options.js';

export interface NewTopic {
  name: string;
  /** Default: the broker's num.partitions. */
  partitions?: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

/** Grow a topic (Kafka's NewPartitions): partitions are only ever added, never removed. */
export interface NewPartitions {
  topic: string;
  /** The new total number of partitions. */
  count: number;
  /** The replicas of each new partition, preferred leader first; absent: the controller places them. */
  assignments?: number[][];
}

export interface PartitionDescription {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  logStartOffset: number;
  highWatermark: number;
}

export interface TopicDescription {
  name: string;
  partitions: PartitionDescription[];
  configs: Record<string, string>;
}

export interface ClusterDescription {
  clusterId: string;
  controllerId: number;
  brokers: Array<{ nodeId: number; host: string; port: number; rack: string | null }>;
}

/** One partition as the cluster's metadata image has it. */
export interface ClusterPartitionStatus {
  partition: number;
  /** -1 when the partition is offline. */
  leader: number;
  leaderEpoch: number;
  partitionEpoch: number;
  replicas: number[];
  isr: number[];
  /** While a reassignment moves the partition: the replicas it adds and removes (empty otherwise). */
  addingReplicas: number[];
  removingReplicas: number[];
  /** Replicas whose broker reported them offline (their log failed there); not leaders, not in the ISR. */
  offlineReplicas: number[];
  /** The topic's min.insync.replicas (0 from a broker too old to say). */
  minInsyncReplicas: number;
}

export interface ClusterNodeStatus {
  id: number;
  /** The node's gRPC listener. */
  host: string;
  port: number;
  rack: string | null;
  fenced: boolean;
  incarnationId: string;
  /** The offset of the node's RegisterBroker record in the metadata log. */
  brokerEpoch: number;
  inControlledShutdown: boolean;
  /** The replicas this node reported offline (its log failed for them), by topic and partition. */
  offlineReplicas: Array<{ topic: string; partition: number }>;
  /** Its log directory: online; full (free space under log.dir.min.free.bytes); offline (a write failed, until restart). */
  logDir: 'online' | 'full' | 'offline';
  /** Decommissioned (`runnel broker decommission`): no new replicas, its replicas move off. */
  decommissioned: boolean;
}

/** One partition's planned move: its replicas before and after (the preferred leader first). */
export interface PlannedReplicaMove {
  topic: string;
  partition: number;
  from: number[];
  to: number[];
}

/** `Admin.rebalanceReplicas`: the plan, each broker's counts before and after, and what started. */
export interface ReplicaRebalance {
  moves: PlannedReplicaMove[];
  brokers: Array<{ brokerId: number; replicasBefore: number; replicasAfter: number; preferredBefore: number; preferredAfter: number }>;
  /** Partitions with a replica on a decommissioned broker that no usable broker can take. */
  unplaceable: Array<{ topic: string; partition: number }>;
  /** Per move, whether it started (empty on a dry run); errors as RunnelErrors. */
  started: PartitionReassignmentOutcome[];
}

/** `Admin.decommissionBroker` / `recommissionBroker`. */
export interface BrokerDecommissionOutcome {
  /** Partitions with a replica on the broker now (moving off it or not). */
  replicasLeft: number;
  /** Decommission: the moves started; recommission: the moves cancelled. */
  moves: PartitionReassignmentOutcome[];
  /** Partitions no usable broker can take now (the controller retries them). */
  unplaceable: Array<{ topic: string; partition: number }>;
}

/** What `runnel cluster status` prints: the answering node's metadata image plus the controller quorum. */
export interface ClusterStatus {
  clusterId: string;
  /** The active controller and its Raft term; id -1 and term -1 when unknown. */
  controller: { id: number; term: number };
  /** The quorum voters; logEndOffset -1 when unknown. */
  voters: Array<{ id: number; address: string; logEndOffset: number }>;
  /** The node that answered, and the metadata log offset its image is at. */
  servedBy: number;
  metadataOffset: number;
  /** Sorted by id. */
  nodes: ClusterNodeStatus[];
  /** Sorted by name, partitions by id. */
  topics: Array<{ name: string; partitions: ClusterPartitionStatus[] }>;
}

export interface MovedLeader {
  topic: string;
  partition: number;
  from: number;
  to: number;
  leaderEpoch: number;
}

export interface UnmovedLeader {
  topic: string;
  partition: number;
  preferred: number;
  leader: number;
  reason: string;
}

/** The outcome of a preferred-leader election: leaderships moved, and those left where they are with why. */
export interface PreferredLeaderElection {
  moved: MovedLeader[];
  notMoved: UnmovedLeader[];
}

/** One partition's outcome of Admin.electLeaders: error null when a leader was elected. */
export interface LeaderElectionResult {
  topic: string;
  partition: number;
  error: RunnelError | null;
}

/** A new target for a partition's replicas (the preferred leader first), or null to cancel its move. */
export interface PartitionReassignmentTarget {
  topic: string;
  partition: number;
  replicas: number[] | null;
}

export interface PartitionReassignmentOutcome {
  topic: string;
  partition: number;
  /** null: accepted (the move started, was replaced, completed at once or was cancelled). */
  error: RunnelError | null;
}

/** How far one replica being added is behind its leader. */
export interface AddingReplicaProgress {
  brokerId: number;
  /** The replica's log end as of its latest fetch from the leader (-1 before its first). */
  logEndOffset: number;
  /** Offsets the replica still has to copy (from the log start when it has not fetched yet). */
  offsetsLeft: number;
  /** An estimate: the leader's log size × offsetsLeft / the offsets the log holds. */
  bytesLeft: number;
}

export interface ReassignmentProgress {
  leader: number;
  logStartOffset: number;
  logEndOffset: number;
  sizeBytes: number;
  adding: AddingReplicaProgress[];
}

/** A moving partition (KIP-455): replicas are the target followed by the replicas being removed. */
export interface OngoingPartitionReassignment {
  topic: string;
  partition: number;
  replicas: number[];
  addingReplicas: number[];
  removingReplicas: number[];
  /** replicas − removing: where the partition is going. */
  targetReplicas: number[];
  isr: number[];
  leader: number;
  /** With `progress: true`, the leader's view; null when the leader could not say (none, or unreachable). */
  progress?: ReassignmentProgress | null;
}

/** A dynamic broker config resource: one broker (name: its id) or the cluster default (name ''). */
export interface BrokerConfigResource {
  type: 'broker' | 'cluster';
  name: string;
}

/** Set a key, or delete it (the broker falls back to the cluster default, then to its own config). */
export type BrokerConfigOperation = { key: string; op: 'set'; value: string } | { key: string; op: 'delete' };

export interface BrokerConfigChange {
  resource: BrokerConfigResource;
  ops: BrokerConfigOperation[];
}

export interface BrokerConfigOutcome {
  resource: BrokerConfigResource;
  /** null: applied (or, with validateOnly, valid). */
  error: RunnelError | null;
}

export interface DynamicBrokerConfigs {
  resource: BrokerConfigResource;
  /** The values set on this resource itself, by key. */
  configs: Record<string, string>;
}

export type OffsetSpec = number | 'earliest' | 'latest';

export interface ListedOffset {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
}

/** A group as ListGroups reports it. */
export interface GroupListing {
  groupId: string;
  /** Kafka's group states: Empty, PreparingRebalance, CompletingRebalance, Stable (Dead groups are not listed). */
  state: string;
  /** 'consumer' for consumer groups; empty for a group known only by offsets committed from outside it. */
  protocolType: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  /** As Kafka shows it: '/' and the address the member connected from. */
  clientHost: string;
  /** The member's partitions in the current generation; decoded for protocol type 'consumer' only, else empty. */
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  groupId: string;
  /** Empty, PreparingRebalance, CompletingRebalance, Stable, or Dead (the coordinator knows no such group). */
  state: string;
  protocolType: string;
  /** The protocol the group chose (for consumers: the assignor's name); empty without a generation. */
  protocol: string;
  generationId: number;
  /** The leader member's id; empty without a generation. */
  leader: string;
  /** The node id of the group's coordinator. */
  coordinator: number;
  members: GroupMemberDescription[];
}

/** A committed offset of a group. */
export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
  /** -1: unknown. */
  leaderEpoch: number;
  metadata: string;
}

export interface GroupOffsetChange {
  topic: string;
  partition: number;
  offset: number;
  metadata?: string;
}

/** Attempts of one admin call after network errors (each attempt tries every known broker). */
const ADMIN_ATTEMPTS_MAX = 3;
const ADMIN_BACKOFF_MS = 100;
const ADMIN_BACKOFF_MAX_MS = 1000;

export class Admin {
  private readonly cluster: Cluster;

  constructor(options: ClientOptions) {
    this.cluster = new Cluster({ ...resolveClientOptions(options), allowAutoTopicCreation: false, produceWindowMax: 1 });
  }

  /** Creates topics; throws the first failing topic's error as a RunnelError naming the topic. */
  async createTopics(topics: NewTopic[], options: { validateOnly?: boolean } = {}): Promise<void> {
    const request: ClientApi.CreateTopicsRequest = {
      validateOnly: options.validateOnly ?? false,
      topics: topics.map((topic) => ({
        name: topic.name,
        numPartitions: topic.partitions ?? -1,
        replicationFactor: topic.replicationFactor ?? -1,
        configs: Object.entries(topic.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
    };
    const response = await this.withRetries(() => this.cluster.anyBroker((connection) => connection.unary('CreateTopics', request)));
    throwFirstTopicError(response.topics, 'create');
  }

  /**
   * Grows topics to a new partition count; throws the first failing topic's error (INVALID_PARTITIONS
   * for a count that is not an increase). Producers and consumers see the new partitions at their
   * next metadata refresh (metadataMaxAgeMs); a consumer group rebalances onto them.
   */
  async createPartitions(topics: NewPartitions[], options: { validateOnly?: boolean } = {}): Promise<void> {
    const request: ClientApi.CreatePartitionsRequest = {
      validateOnly: options.validateOnly ?? false,
      topics: topics.map((topic) => ({ name: topic.topic, count: topic.count, assignments: (topic.assignments ?? []).map((brokerIds) => ({ brokerIds })) })),
    };
    const response = await this.withRetries(() => this.cluster.anyBroker((connection) => connection.unary('CreatePartitions', request)));
    throwFirstTopicError(response.topics, 'grow');
  }

  async deleteTopics(names: string[]): Promise<void> {
    const response = await this.withRetries(() => this.cluster.anyBroker((connection) => connection.unary('DeleteTopics', { names })));
    throwFirstTopicError(response.topics, 'delete');
  }

  /** Every topic name, sorted. */
  async listTopics(): Promise<string[]> {
    const response = await this.metadata([], false);
    return response.topics.map((topic) => topic.name).sort();
  }

  /** Topics with partitions and their config overrides; all topics (sorted) when `names` is absent. */
  async describeTopics(names?: string[]): Promise<TopicDescription[]> {
    const response = await this.metadata(names ?? [], true);
    const byName = new Map(response.topics.map((topic) => [topic.name, topic]));
    const wanted = names ?? [...byName.keys()].sort();
    const descriptions = wanted.map((name) => {
      const topic = byName.get(name);
      if (topic === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${name}' does not exist`);
      if (topic.errorCode !== 0) throw RunnelError.fromCode(topic.errorCode, aboutTopic(name, topic.errorMessage));
      return describeTopic(topic);
    });
    await this.withLeadersOffsets(descriptions);
    return descriptions;
  }

  /**
   * The answering broker knows the log start and high watermark only of partitions it leads: every
   * partition's own leader is asked (ListOffsets earliest and latest). A partition whose leader
   * cannot say (no leader, a new leader below its epoch start, unreachable) keeps -1.
   */
  private async withLeadersOffsets(descriptions: TopicDescription[]): Promise<void> {
    const led = descriptions.flatMap((topic) => topic.partitions.filter((partition) => partition.leader >= 0).map((partition) => ({ topic: topic.name, partition })));
    if (led.length === 0) return;
    const queries = led.flatMap(({ topic, partition }) => (['earliest', 'latest'] as const).map((timestamp) => ({ topic, partition: partition.partition, timestamp })));
    let answers: Array<ClientApi.PartitionOffset__Output | undefined>;
    try {
      answers = await listOffsetAnswers(this.cluster, queries);
    } catch {
      return; // the leaders' offsets are extra; the metadata's answer stands
    }
    led.forEach(({ partition }, index) => {
      const [earliest, latest] = [answers[2 * index], answers[2 * index + 1]];
      partition.logStartOffset = earliest?.errorCode === 0 ? Number(earliest.offset) : -1;
      partition.highWatermark = latest?.errorCode === 0 ? Number(latest.offset) : -1;
    });
  }

  async describeCluster(): Promise<ClusterDescription> {
    const response = await this.metadata([], false);
    return {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      brokers: response.brokers
        .map((broker) => ({ nodeId: broker.nodeId, host: broker.host, port: broker.port, rack: broker.rack === '' ? null : broker.rack }))
        .sort((a, b) => a.nodeId - b.nodeId),
    };
  }

  /** The whole cluster as one broker knows it (DescribeCluster): nodes, controller quorum, every partition. */
  async clusterStatus(): Promise<ClusterStatus> {
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('DescribeCluster', {}));
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, `describe cluster: ${answer.errorMessage || 'error'}`);
      return answer;
    });
    return clusterStatusOf(response);
  }

  /**
   * Runs preferred-leader election now (the active controller does it): every partition whose
   * preferred replica (the first of its replicas) is in the ISR but does not lead gets it back.
   */
  async electPreferredLeaders(): Promise<PreferredLeaderElection> {
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('ElectPreferredLeaders', {}));
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, `elect preferred leaders: ${answer.errorMessage || 'error'}`);
      return answer;
    });
    return {
      moved: response.moved
        .map((entry) => ({ topic: entry.topic, partition: entry.partition, from: entry.from, to: entry.to, leaderEpoch: entry.leaderEpoch }))
        .sort(byTopicPartition),
      notMoved: response.notMoved
        .map((entry) => ({ topic: entry.topic, partition: entry.partition, preferred: entry.preferred, leader: entry.leader, reason: entry.reason }))
        .sort(byTopicPartition),
    };
  }

  /**
   * Kafka's Admin.electLeaders: a `preferred` election moves leadership to each partition's first
   * replica; an `unclean` one gives a partition without a leader a live replica from outside the
   * ISR (records may be lost). `partitions` null elects every partition (and the answer then lists
   * only those where an election was needed). Per partition: `error` null when elected, else the
   * RunnelError (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
   * UNKNOWN_TOPIC_OR_PARTITION). A failure of the whole request throws.
   */
  async electLeaders(electionType: 'preferred' | 'unclean', partitions: ReadonlyArray<{ topic: string; partition: number }> | null): Promise<LeaderElectionResult[]> {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of partitions ?? []) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) =>
        connection.unary('ElectLeaders', {
          electionType: electionType === 'preferred' ? 0 : 1,
          allPartitions: partitions === null,
          topics: [...byTopic].map(([topic, indexes]) => ({ topic, partitions: indexes })),
        }),
      );
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, `elect leaders: ${answer.errorMessage || 'error'}`);
      return answer;
    });
    return response.topics
      .flatMap((topic) =>
        topic.partitions.map((result) => ({
          topic: topic.topic,
          partition: result.partition,
          error: result.errorCode === 0 ? null : RunnelError.fromCode(result.errorCode, result.errorMessage),
        })),
      )
      .sort(byTopicPartition);
  }

  /**
   * Starts, replaces or cancels partition moves (Kafka's AlterPartitionReassignments, KIP-455). A
   * move adds the target replicas, completes once all of them are in the ISR (moving leadership
   * off a removed leader) and then removes the others; it is in the metadata log, so it survives
   * a controller failover. Per-partition errors come back as outcomes; a request-wide failure throws.
   */
  async alterPartitionReassignments(targets: PartitionReassignmentTarget[]): Promise<PartitionReassignmentOutcome[]> {
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) =>
        connection.unary('AlterPartitionReassignments', {
          partitions: targets.map((target) => ({ topic: target.topic, partition: target.partition, replicas: target.replicas ?? [], cancel: target.replicas === null })),
        }),
      );
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, `alter partition reassignments: ${answer.errorMessage || 'error'}`);
      // The controller moved (or was unreachable): every partition carries the same retriable code.
      const first = answer.partitions[0];
      if (first !== undefined && answer.partitions.every((result) => result.errorCode === first.errorCode) && isRetriable(first.errorCode)) {
        throw RunnelError.fromCode(first.errorCode, `alter partition reassignments: ${first.errorMessage}`);
      }
      return answer;
    });
    return reassignmentOutcomes(response.partitions);
  }

  /**
   * `runnel cluster rebalance --replicas`: the active controller plans a spread of replicas and
   * preferred leaders over the usable brokers (moving replicas off decommissioned ones) and starts
   * the moves; `dryRun` plans only. REASSIGNMENT_IN_PROGRESS while partitions move,
   * BROKER_NOT_AVAILABLE while a broker that is not decommissioned is down.
   */
  async rebalanceReplicas(options: { dryRun?: boolean } = {}): Promise<ReplicaRebalance> {
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('RebalanceReplicas', { dryRun: options.dryRun === true }));
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, answer.errorMessage || 'rebalance replicas failed');
      return answer;
    });
    return {
      moves: response.moves.map((move) => ({ topic: move.topic, partition: move.partition, from: move.from, to: move.to })),
      brokers: response.brokers.map((broker) => ({ ...broker })),
      unplaceable: response.unplaceable.map((ref) => ({ topic: ref.topic, partition: ref.partition })),
      started: reassignmentOutcomes(response.started),
    };
  }

  /** `runnel broker decommission N`: no new replicas for the broker, and every replica moves off it. */
  async decommissionBroker(brokerId: number): Promise<BrokerDecommissionOutcome> {
    return this.changeDecommission(brokerId, true);
  }

  /** `runnel broker recommission N`: the broker takes replicas again; moves still taking replicas off it are cancelled. */
  async recommissionBroker(brokerId: number): Promise<BrokerDecommissionOutcome> {
    return this.changeDecommission(brokerId, false);
  }

  private async changeDecommission(brokerId: number, decommission: boolean): Promise<BrokerDecommissionOutcome> {
    const verb = decommission ? 'decommission' : 'recommission';
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('DecommissionBroker', { brokerId, decommission }));
      // The controller's message names the broker and why.
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, answer.errorMessage || `${verb} broker ${brokerId} failed`);
      return answer;
    });
    return {
      replicasLeft: response.replicasLeft,
      moves: reassignmentOutcomes(response.moves),
      unplaceable: response.unplaceable.map((ref) => ({ topic: ref.topic, partition: ref.partition })),
    };
  }

  /**
   * The partitions that are moving (all, or those of `partitions` that move), sorted. With
   * `progress`, each partition's leader is asked how far every replica being added is behind it.
   */
  async listPartitionReassignments(
    partitions?: Array<{ topic: string; partition: number }>,
    options: { progress?: boolean } = {},
  ): Promise<OngoingPartitionReassignment[]> {
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('ListPartitionReassignments', { partitions: partitions ?? [] }));
      if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, `list partition reassignments: ${answer.errorMessage || 'error'}`);
      return answer;
    });
    const moving: OngoingPartitionReassignment[] = response.reassignments
      .map((entry) => ({
        topic: entry.topic,
        partition: entry.partition,
        replicas: entry.replicas,
        addingReplicas: entry.addingReplicas,
        removingReplicas: entry.removingReplicas,
        targetReplicas: entry.replicas.filter((id) => !entry.removingReplicas.includes(id)),
        isr: entry.isr,
        leader: entry.leader,
      }))
      .sort(byTopicPartition);
    if (options.progress === true) await this.addProgress(moving);
    return moving;
  }

  /** Asks each moving partition's leader (DescribeReplicaProgress) for its replicas' log ends. */
  private async addProgress(moving: OngoingPartitionReassignment[]): Promise<void> {
    const byLeader = new Map<number, OngoingPartitionReassignment[]>();
    for (const entry of moving) {
      entry.progress = null;
      if (entry.leader < 0) continue;
      byLeader.set(entry.leader, [...(byLeader.get(entry.leader) ?? []), entry]);
    }
    if (byLeader.size === 0) return;
    await this.cluster.refresh();
    await Promise.all(
      [...byLeader].map(async ([leader, entries]) => {
        let answer: ClientApi.DescribeReplicaProgressResponse__Output;
        try {
          const connection = this.cluster.connectionToNode(leader, `${entries[0]!.topic}-${entries[0]!.partition}`);
          answer = await connection.unary('DescribeReplicaProgress', { partitions: entries.map((entry) => ({ topic: entry.topic, partition: entry.partition })) });
        } catch {
          return; // the leader is down or moved: progress stays unknown (null)
        }
        for (const result of answer.partitions) {
          const entry = entries.find((candidate) => candidate.topic === result.topic && candidate.partition === result.partition);
          if (entry === undefined || result.errorCode !== 0) continue;
          const logStart = Number(result.logStartOffset);
          const logEnd = Number(result.logEndOffset);
          const size = Number(result.sizeBytes);
          entry.progress = {
            leader: result.leader,
            logStartOffset: logStart,
            logEndOffset: logEnd,
            sizeBytes: size,
            adding: entry.addingReplicas.map((brokerId) => {
              const fetched = result.replicas.find((replica) => replica.brokerId === brokerId);
              const replicaEnd = fetched === undefined ? -1 : Number(fetched.logEndOffset);
              const offsetsLeft = Math.max(0, logEnd - Math.max(replicaEnd, logStart));
              const held = logEnd - logStart;
              return { brokerId, logEndOffset: replicaEnd, offsetsLeft, bytesLeft: held <= 0 ? 0 : Math.round((size * offsetsLeft) / held) };
            }),
          };
        }
      }),
    );
  }

  /**
   * Sets or deletes dynamic broker configs (Kafka's IncrementalAlterConfigs on BROKER resources,
   * KIP-226): per broker, or the cluster default every broker falls back to. Only keys a broker can
   * change at runtime are accepted (the replication throttles). Each resource is all or nothing and
   * has its own outcome; a request-wide failure throws. Answered once the broker asked has applied it.
   */
  async incrementalAlterConfigs(changes: BrokerConfigChange[], options: { validateOnly?: boolean } = {}): Promise<BrokerConfigOutcome[]> {
    const request: ClientApi.IncrementalAlterConfigsRequest = {
      resources: changes.map((change) => ({
        resource: change.resource,
        ops: change.ops.map((operation) => ({ key: operation.key, op: operation.op === 'set' ? 0 : 1, value: operation.op === 'set' ? operation.value : '' })),
      })),
      validateOnly: options.validateOnly === true,
    };
    const response = await this.withRetries(async () => {
      const answer = await this.cluster.anyBroker((connection) => connection.unary('IncrementalAlterConfigs', request));
      // The controller moved (or was unreachable): every resource carries the same retriable code.
      const first = answer.resources[0];
      if (first !== undefined && answer.resources.every((result) => result.errorCode === first.errorCode) && isRetriable(first.errorCode)) {
        throw RunnelError.fromCode(first.errorCode, `alter configs: ${first.errorMessage}`);
      }
      return answer;
    });
    return response.resources.map((result) => {
      const resource = { type: result.resource?.type === 'cluster' ? 'cluster' : 'broker', name: result.resource?.name ?? '' } as const;
      return { resource, error: result.errorCode === 0 ? null : RunnelError.fromCode(result.errorCode, result.errorMessage) };
    });
  }

  /** The dynamic values set on `resources` (every resource that has one when none is given); an unknown resource throws. */
  async describeDynamicConfigs(resources: BrokerConfigResource[] = []): Promise<DynamicBrokerConfigs[]> {
    const response = await this.withRetries(() => this.cluster.anyBroker((connection) => connection.unary('DescribeDynamicConfigs', { resources })));
    const failure = response.resources.find((result) => result.errorCode !== 0);
    if (failure !== undefined) throw RunnelError.fromCode(failure.errorCode, failure.errorMessage);
    return response.resources.map((result) => ({
      resource: { type: result.resource?.type === 'cluster' ? 'cluster' : 'broker', name: result.resource?.name ?? '' },
      configs: Object.fromEntries(result.configs.map((entry) => [entry.key, entry.value])),
    }));
  }

  /**
   * Offsets by timestamp, 'earliest' (log start) or 'latest' (high watermark), asked of each
   * partition's leader. Results come in the order of `queries`.
   */
  async listOffsets(queries: Array<{ topic: string; partition: number; timestamp: OffsetSpec }>): Promise<ListedOffset[]> {
    return this.withRetries(() => listOffsetsFromLeaders(this.cluster, queries));
  }

  /** The coordinator of `groupId` (FindCoordinator), looked up again on coordinator errors for up to requestTimeoutMs. */
  findCoordinator(groupId: string): Promise<GroupCoordinator> {
    return findCoordinator(this.cluster, groupId);
  }

  /**
   * Every group of the cluster, sorted by id: each broker answers for the groups it coordinates,
   * so every live broker is asked (as Kafka's admin does). A broker that cannot answer fails the
   * call, naming it: a list without its groups would look complete.
   */
  async listGroups(): Promise<GroupListing[]> {
    const { brokers } = await this.metadata([], false);
    const answers = await Promise.all(
      brokers.map(async (broker) => {
        const address = brokerAddress(broker.host, broker.port);
        try {
          const answer = await this.withRetries(() => this.cluster.connection(address).group('ListGroups', { statesFilter: [] }));
          if (answer.errorCode !== 0) throw RunnelError.fromCode(answer.errorCode, answer.errorMessage);
          return answer.groups;
        } catch (error) {
          if (!(error instanceof RunnelError)) throw error;
          throw RunnelError.fromCode(error.code, `list groups on node ${broker.nodeId} (${address}): ${error.detail}`);
        }
      }),
    );
    const byId = new Map<string, GroupListing>();
    for (const group of answers.flat()) {
      // While a group's coordinator moves, the old and the new one may both report it.
      if (!byId.has(group.groupId)) byId.set(group.groupId, { groupId: group.groupId, state: group.groupState, protocolType: group.protocolType });
    }
    return [...byId.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /**
   * Each group as its coordinator describes it, in the order of `groupIds`. A group the coordinator
   * does not know is described as Dead with no members (as Kafka does).
   */
  describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    return Promise.all(
      groupIds.map((groupId) =>
        callCoordinator(this.cluster, groupId, async (coordinator) => {
          const response = await coordinator.connection.group('DescribeGroups', { groups: [groupId] });
          const described = response.groups.find((group) => group.groupId === groupId);
          if (described === undefined) throw new RunnelError('UNKNOWN_SERVER_ERROR', `describe group '${groupId}': the coordinator did not answer for it`);
          if (described.errorCode !== 0) throw RunnelError.fromCode(described.errorCode, `describe group '${groupId}'${described.errorMessage ? `: ${described.errorMessage}` : ''}`);
          return groupDescriptionOf(described, coordinator.nodeId);
        }),
      ),
    );
  }

  /**
   * The committed offsets of `groupId` (OffsetFetch), sorted by topic and partition: of every
   * partition it committed, or of `partitions` only. Partitions without a commit are left out.
   */
  listGroupOffsets(groupId: string, partitions?: Array<{ topic: string; partition: number }>): Promise<GroupOffset[]> {
    const request: GroupApi.OffsetFetchRequest = {
      groupId,
      partitions: (partitions ?? []).map(({ topic, partition }) => ({ topic, partition })),
      allPartitions: partitions === undefined,
    };
    return callCoordinator(this.cluster, groupId, async (coordinator) => {
      const response = await coordinator.connection.group('OffsetFetch', request);
      if (response.errorCode !== 0) throw RunnelError.fromCode(response.errorCode, `fetch the offsets of group '${groupId}'${response.errorMessage ? `: ${response.errorMessage}` : ''}`);
      const failed = response.partitions.find((entry) => entry.errorCode !== 0);
      if (failed !== undefined) throw RunnelError.fromCode(failed.errorCode, `fetch the offset of group '${groupId}' for ${failed.topic}-${failed.partition}`);
      return response.partitions
        .filter((entry) => entry.offset >= 0)
        .map((entry) => ({ topic: entry.topic, partition: entry.partition, offset: entry.offset, leaderEpoch: entry.leaderEpoch, metadata: entry.metadata }))
        .sort(byTopicPartition);
    });
  }

  /**
   * Commits `offsets` for `groupId` from outside the group (generation -1, no member id): the
   * coordinator allows that only while the group has no members, and answers UNKNOWN_MEMBER_ID
   * otherwise, which is thrown saying so.
   */
  async alterGroupOffsets(groupId: string, offsets: GroupOffsetChange[]): Promise<void> {
    for (const { topic, partition, offset } of offsets) {
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`the offset of ${topic}-${partition} must be a non-negative integer, got ${offset}`);
    }
    if (offsets.length === 0) return;
    const request: GroupApi.OffsetCommitRequest = {
      groupId,
      generationId: -1,
      memberId: '',
      groupInstanceId: '',
      partitions: offsets.map(({ topic, partition, offset, metadata }) => ({ topic, partition, offset, leaderEpoch: -1, metadata: metadata ?? '' })),
    };
    await callCoordinator(this.cluster, groupId, async (coordinator) => {
      const response = await coordinator.connection.group('OffsetCommit', request);
      const failed = response.partitions.find((entry) => entry.errorCode !== 0);
      if (failed === undefined) return;
      if (failed.errorCode === UNKNOWN_MEMBER_ID) {
        throw new RunnelError('UNKNOWN_MEMBER_ID', `cannot alter the offsets of group '${groupId}': it has active members (offsets can be altered only while a group has none)`);
      }
      throw RunnelError.fromCode(failed.errorCode, `cannot alter the offset of group '${groupId}' for ${failed.topic}-${failed.partition}`);
    });
  }

  /**
   * Deletes groups with their committed offsets, each at its coordinator. Every group is tried;
   * then the first failure (in the order of `groupIds`) is thrown: NON_EMPTY_GROUP for a group with
   * members, GROUP_ID_NOT_FOUND for one the coordinator does not know.
   */
  async deleteGroups(groupIds: string[]): Promise<void> {
    const results = await Promise.allSettled(
      groupIds.map((groupId) =>
        callCoordinator(this.cluster, groupId, async (coordinator) => {
          const response = await coordinator.connection.group('DeleteGroups', { groupsNames: [groupId] });
          const result = response.results.find((entry) => entry.groupId === groupId);
          if (result === undefined) throw new RunnelError('UNKNOWN_SERVER_ERROR', `delete group '${groupId}': the coordinator did not answer for it`);
          if (result.errorCode !== 0) throw deleteGroupError(groupId, result.errorCode);
        }),
      ),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async close(): Promise<void> {
    await this.cluster.close();
  }

  private metadata(topics: string[], includeConfigs: boolean): Promise<ClientApi.MetadataResponse__Output> {
    return this.withRetries(() => this.cluster.metadata({ topics, includeConfigs, allowAutoTopicCreation: false }));
  }

  private async withRetries<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const retriable = error instanceof RunnelError && error.retriable && error.errorName !== 'UNKNOWN_TOPIC_OR_PARTITION';
        if (!retriable || attempt >= ADMIN_ATTEMPTS_MAX) throw error;
        this.cluster.requestRefresh();
        await sleep(backoffMs(attempt, ADMIN_BACKOFF_MS, ADMIN_BACKOFF_MAX_MS));
      }
    }
  }
}

const UNKNOWN_MEMBER_ID = errorCode('UNKNOWN_MEMBER_ID');
const NON_EMPTY_GROUP = errorCode('NON_EMPTY_GROUP');
const GROUP_ID_NOT_FOUND = errorCode('GROUP_ID_NOT_FOUND');

function byTopicPartition<T extends { topic: string; partition: number }>(a: T, b: T): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
}

function deleteGroupError(groupId: string, code: number): RunnelError {
  if (code === NON_EMPTY_GROUP) return new RunnelError('NON_EMPTY_GROUP', `cannot delete group '${groupId}': it has active members`);
  if (code === GROUP_ID_NOT_FOUND) return new RunnelError('GROUP_ID_NOT_FOUND', `group '${groupId}' does not exist`);
  return RunnelError.fromCode(code, `cannot delete group '${groupId}'`);
}

function groupDescriptionOf(group: GroupApi.DescribedGroup__Output, coordinator: number): GroupDescription {
  return {
    groupId: group.groupId,
    state: group.groupState,
    protocolType: group.protocolType,
    protocol: group.protocolData,
    generationId: group.generationId,
    leader: group.leader,
    coordinator,
    members: group.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId === '' ? null : member.groupInstanceId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      assignment: group.protocolType === CONSUMER_PROTOCOL_TYPE ? memberAssignment(group.groupId, member) : [],
    })),
  };
}

/** A consumer's assignment; bytes that are not Kafka's consumer protocol are a client's bug, reported as such. */
function memberAssignment(groupId: string, member: GroupApi.DescribedGroupMember__Output): TopicPartitions[] {
  try {
    return [...decodeAssignment(Buffer.from(member.memberAssignment)).partitions];
  } catch (error) {
    if (!(error instanceof ConsumerProtocolError)) throw error;
    throw new RunnelError('UNKNOWN_SERVER_ERROR', `group '${groupId}': the assignment of member '${member.memberId}' is not Kafka's consumer protocol (${error.message})`);
  }
}

/** A broker's message about a topic, naming the topic once (most messages already do). */
function aboutTopic(name: string, message: string): string {
  if (message === '') return `topic '${name}': metadata error`;
  return message.includes(`'${name}'`) ? message : `topic '${name}': ${message}`;
}

function throwFirstTopicError(results: ClientApi.TopicResult__Output[], verb: string): void {
  for (const result of results) {
    if (result.errorCode !== 0) {
      throw RunnelError.fromCode(result.errorCode, `cannot ${verb} topic '${result.name}'${result.errorMessage ? `: ${result.errorMessage}` : ''}`);
    }
  }
}

function describeTopic(topic: ClientApi.TopicInfo__Output): TopicDescription {
  return {
    name: topic.name,
    partitions: topic.partitions
      .map((partition) => ({
        partition: partition.partition,
        leader: partition.leader,
        leaderEpoch: partition.leaderEpoch,
        replicas: [...partition.replicas],
        isr: [...partition.isr],
        logStartOffset: partition.logStartOffset,
        highWatermark: partition.highWatermark,
      }))
      .sort((a, b) => a.partition - b.partition),
    configs: Object.fromEntries(topic.configs.map((entry) => [entry.name, entry.value])),
  };
}

/** A DescribeCluster answer as a ClusterStatus: nodes sorted by id, topics by name, partitions by id. */
export function clusterStatusOf(response: ClientApi.DescribeClusterResponse__Output): ClusterStatus {
  return {
    clusterId: response.clusterId,
    controller: { id: response.controllerId, term: response.controllerTerm },
    voters: response.voters
      .map((voter) => ({ id: voter.nodeId, address: voter.address, logEndOffset: voter.logEndOffset }))
      .sort((a, b) => a.id - b.id),
    servedBy: response.servedBy,
    metadataOffset: response.metadataOffset,
    nodes: response.nodes
      .map((node) => ({
        id: node.nodeId,
        host: node.host,
        port: node.port,
        rack: node.rack === '' ? null : node.rack,
        fenced: node.fenced,
        incarnationId: node.incarnationId,
        brokerEpoch: node.brokerEpoch,
        inControlledShutdown: node.inControlledShutdown,
        offlineReplicas: node.offlineReplicas.map((replica) => ({ topic: replica.topic, partition: replica.partition })),
        logDir: logDirStateOf(node.logDirState),
        decommissioned: node.decommissioned,
      }))
      .sort((a, b) => a.id - b.id),
    topics: response.topics
      .map((topic) => ({
        name: topic.name,
        partitions: topic.partitions
          .map((partition) => ({
            partition: partition.partition,
            leader: partition.leader,
            leaderEpoch: partition.leaderEpoch,
            partitionEpoch: partition.partitionEpoch,
            replicas: [...partition.replicas],
            minInsyncReplicas: partition.minInsyncReplicas,
            isr: [...partition.isr],
            addingReplicas: [...partition.addingReplicas],
            removingReplicas: [...partition.removingReplicas],
            offlineReplicas: [...partition.offlineReplicas],
          }))
          .sort((a, b) => a.partition - b.partition),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

function offsetSpecValue(spec: OffsetSpec): number {
  if (spec === 'earliest') return -2;
  if (spec === 'latest') return -1;
  if (!Number.isSafeInteger(spec) || spec < 0) throw new RangeError(`an offset timestamp must be a non-negative integer (ms), got ${spec}`);
  return spec;
}

/**
 * ListOffsets grouped by leader: one call per leader broker (more when one partition is asked
 * several times, since answers are matched by partition). Partition errors become RunnelErrors
 * naming the partition; leader errors ask the cluster to refresh its metadata.
 */
/** Each query's ListOffsets answer from its partition's leader, error codes included. */
async function listOffsetAnswers(
  cluster: Cluster,
  queries: Array<{ topic: string; partition: number; timestamp: OffsetSpec }>,
): Promise<Array<ClientApi.PartitionOffset__Output | undefined>> {
  // Per leader address, rounds of queries in which each partition appears once: key -> query index.
  const rounds = new Map<string, Array<Map<string, number>>>();
  for (const [index, query] of queries.entries()) {
    const topic = await cluster.topic(query.topic);
    if (topic.errorCode !== 0) throw RunnelError.fromCode(topic.errorCode, aboutTopic(query.topic, topic.errorMessage));
    const address = cluster.leaderConnection(query.topic, query.partition).address;
    const list = rounds.get(address) ?? [];
    rounds.set(address, list);
    const id = `${query.topic}\u0000${query.partition}`;
    let round = list.find((candidate) => !candidate.has(id));
    if (round === undefined) {
      round = new Map();
      list.push(round);
    }
    round.set(id, index);
  }
  const answers: Array<ClientApi.PartitionOffset__Output | undefined> = new Array(queries.length);
  const calls = [...rounds].flatMap(([address, list]) =>
    list.map(async (round) => {
      const partitions = [...round.values()].map((index) => {
        const { topic, partition, timestamp } = queries[index]!;
        return { topic, partition, timestamp: offsetSpecValue(timestamp) };
      });
      const response = await cluster.connection(address).unary('ListOffsets', { partitions });
      for (const result of response.partitions) {
        const index = round.get(`${result.topic}\u0000${result.partition}`);
        if (index !== undefined) answers[index] = result;
      }
    }),
  );
  await Promise.all(calls);
  return answers;
}

export async function listOffsetsFromLeaders(
  cluster: Cluster,
  queries: Array<{ topic: string; partition: number; timestamp: OffsetSpec }>,
): Promise<ListedOffset[]> {
  const answers = await listOffsetAnswers(cluster, queries);
  return queries.map((query, index) => {
    const answer = answers[index];
    if (answer === undefined) throw new RunnelError('UNKNOWN_SERVER_ERROR', `no ListOffsets answer for ${query.topic}-${query.partition}`);
    if (answer.errorCode !== 0) {
      if (needsMetadataRefresh(answer.errorCode)) cluster.requestRefresh();
      throw RunnelError.fromCode(answer.errorCode, `list offsets of ${query.topic}-${query.partition}`);
    }
    return { topic: query.topic, partition: query.partition, offset: answer.offset, timestamp: answer.timestamp };
  });
}

/** A node's log_dir_state; empty (a broker that does not report it) reads as online. */
function logDirStateOf(state: string): ClusterNodeStatus['logDir'] {
  return state === 'full' || state === 'offline' ? state : 'online';
}

/** Per-partition reassignment results as outcomes (error null when accepted). */
function reassignmentOutcomes(results: ReadonlyArray<{ topic: string; partition: number; errorCode: number; errorMessage: string }>): PartitionReassignmentOutcome[] {
  return results.map((result) => ({
    topic: result.topic,
    partition: result.partition,
    error: result.errorCode === 0 ? null : RunnelError.fromCode(result.errorCode, `${result.topic}-${result.partition}: ${result.errorMessage}`),
  }));
}
