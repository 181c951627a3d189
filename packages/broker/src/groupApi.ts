// The gRPC door to the group coordinator (proto/runnel/v1/group.proto): it translates messages to
// GroupCoordinator calls and back, and answers FindCoordinator from this broker's metadata,
// creating __consumer_offsets through the controller on first use.
import type * as grpc from '@grpc/grpc-js';
import { errorCode, type GroupApi, type Logger } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import type { ControllerClient } from '@runnel/controller/quorum';
import { errorResult } from './errorResult.js';
import { serveUnary } from './unaryCall.js';
import { OFFSETS_TOPIC, type GroupCoordinator } from './group/groupCoordinator.js';
import type { BrokerMetrics } from './metrics.js';

/** How long FindCoordinator waits for this broker to apply the creation of __consumer_offsets. */
const OFFSETS_TOPIC_PROPAGATION_TIMEOUT_MS = 5_000;

export interface GroupClusterView {
  image(): MetadataImage;
  readonly controller: ControllerClient;
  waitForMetadata(offset: number, timeoutMs: number): Promise<boolean>;
  /** offsets.topic.num.partitions and offsets.topic.replication.factor. */
  readonly offsetsTopicPartitions: number;
  readonly offsetsTopicReplicationFactor: number;
}

export class GroupApiService {
  private creatingOffsetsTopic: Promise<void> | null = null;

  constructor(
    private readonly cluster: GroupClusterView,
    private readonly coordinator: GroupCoordinator,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
  ) {}

  handlers(): GroupApi.GroupApiHandlers {
    return {
      FindCoordinator: (call, callback) => this.serve('findCoordinator', call, callback, (request) => this.findCoordinator(request.key)),
      JoinGroup: (call, callback) =>
        this.serve('joinGroup', call, callback, async (request) => {
          const response = await this.coordinator.join(request.groupId, {
            memberId: request.memberId,
            groupInstanceId: instanceIdOf(request.groupInstanceId),
            clientId: request.clientId,
            clientHost: peerHost(call.getPeer()),
            protocolType: request.protocolType,
            protocols: request.protocols.map((protocol) => ({ name: protocol.name, metadata: Buffer.from(protocol.metadata) })),
            sessionTimeoutMs: request.sessionTimeoutMs,
            rebalanceTimeoutMs: request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
            requireKnownMemberId: request.requireKnownMemberId,
          });
          return {
            errorCode: response.errorCode,
            errorMessage: '',
            generationId: response.generationId,
            protocolType: response.protocolType ?? '',
            protocolName: response.protocolName ?? '',
            leader: response.leader,
            memberId: response.memberId,
            members: response.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId ?? '', metadata: member.metadata })),
          };
        }),
      SyncGroup: (call, callback) =>
        this.serve('syncGroup', call, callback, async (request) => {
          const response = await this.coordinator.sync(request.groupId, {
            memberId: request.memberId,
            groupInstanceId: instanceIdOf(request.groupInstanceId),
            generationId: request.generationId,
            protocolType: request.protocolType === '' ? null : request.protocolType,
            protocolName: request.protocolName === '' ? null : request.protocolName,
            assignments: request.assignments.map((entry) => ({ memberId: entry.memberId, assignment: Buffer.from(entry.assignment) })),
          });
          return { errorCode: response.errorCode, errorMessage: '', protocolType: response.protocolType ?? '', protocolName: response.protocolName ?? '', assignment: response.assignment };
        }),
      Heartbeat: (call, callback) =>
        this.serve('heartbeat', call, callback, async (request) => ({
          errorCode: this.coordinator.heartbeat(request.groupId, request.memberId, request.generationId, instanceIdOf(request.groupInstanceId)),
          errorMessage: '',
        })),
      LeaveGroup: (call, callback) =>
        this.serve('leaveGroup', call, callback, async (request) => {
          const result = this.coordinator.leave(
            request.groupId,
            request.members.map((member) => ({ memberId: member.memberId, groupInstanceId: instanceIdOf(member.groupInstanceId) })),
          );
          return {
            errorCode: result.errorCode,
            errorMessage: '',
            members: result.members.map((code, k) => ({ memberId: request.members[k]!.memberId, groupInstanceId: request.members[k]!.groupInstanceId, errorCode: code })),
          };
        }),
      OffsetCommit: (call, callback) =>
        this.serve('offsetCommit', call, callback, async (request) => {
          const offsets = request.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition, offset: Number(entry.offset), leaderEpoch: entry.leaderEpoch, metadata: entry.metadata }));
          const codes = await this.coordinator.commitOffsets(request.groupId, request.memberId, request.generationId, offsets, instanceIdOf(request.groupInstanceId));
          return { partitions: offsets.map((entry, k) => ({ topic: entry.topic, partition: entry.partition, errorCode: codes[k]! })) };
        }),
      OffsetFetch: (call, callback) =>
        this.serve('offsetFetch', call, callback, async (request) => {
          const wanted = request.allPartitions && request.partitions.length === 0 ? null : request.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition }));
          const result = this.coordinator.fetchOffsets(request.groupId, wanted);
          return {
            errorCode: result.errorCode,
            errorMessage: '',
            partitions: result.offsets.map((entry) => ({ topic: entry.topic, partition: entry.partition, offset: entry.offset, leaderEpoch: entry.leaderEpoch, metadata: entry.metadata, errorCode: 0 })),
          };
        }),
      ListGroups: (call, callback) =>
        this.serve('listGroups', call, callback, async (request) => {
          const states = new Set(request.statesFilter.map((state) => state.toLowerCase()));
          const groups = this.coordinator.listGroups().filter((group) => states.size === 0 || states.has(group.state.toLowerCase()));
          return { errorCode: 0, errorMessage: '', groups: groups.map((group) => ({ groupId: group.groupId, protocolType: group.protocolType, groupState: group.state })) };
        }),
      DescribeGroups: (call, callback) =>
        this.serve('describeGroups', call, callback, async (request) => ({
          groups: request.groups.map((groupId) => {
            const { errorCode: code, group } = this.coordinator.describe(groupId);
            const base = { errorCode: code, errorMessage: '', groupId, groupState: code === 0 ? 'Dead' : '', protocolType: '', protocolData: '', members: [], generationId: -1, leader: '' };
            if (group === null) return base;
            return {
              ...base,
              groupState: group.state,
              protocolType: group.protocolType,
              protocolData: group.protocolName,
              generationId: group.generationId,
              leader: group.leader,
              members: group.members.map((member) => ({
                memberId: member.memberId,
                groupInstanceId: member.groupInstanceId ?? '',
                clientId: member.clientId,
                clientHost: member.clientHost,
                memberMetadata: member.metadata,
                memberAssignment: member.assignment,
              })),
            };
          }),
        })),
      DeleteGroups: (call, callback) =>
        this.serve('deleteGroups', call, callback, async (request) => ({
          results: await Promise.all(request.groupsNames.map(async (groupId) => ({ groupId, errorCode: await this.coordinator.deleteGroup(groupId) }))),
        })),
    };
  }

  private serve<Request, Response>(api: string, call: grpc.ServerUnaryCall<Request, Response>, callback: grpc.sendUnaryData<Response>, handle: (request: Request) => Promise<Response>): void {
    serveUnary(api, call, callback, handle, this.metrics, this.logger);
  }

  /**
   * The broker leading the group's __consumer_offsets partition. The topic is created on first use
   * (as Kafka does), with offsets.topic.replication.factor or, on a smaller cluster, every live
   * broker (and a warning).
   */
  private async findCoordinator(key: string): Promise<GroupApi.FindCoordinatorResponse> {
    const none = { nodeId: -1, host: '', port: 0 };
    if (key.length === 0) return { ...none, errorCode: errorCode('INVALID_GROUP_ID'), errorMessage: 'the group id is empty' };
    if (this.cluster.image().topic(OFFSETS_TOPIC) === undefined) {
      try {
        await this.createOffsetsTopic();
      } catch (error) {
        const fields = errorResult(error, this.logger);
        return { ...none, errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: `cannot create ${OFFSETS_TOPIC}: ${fields.errorMessage}` };
      }
    }
    const image = this.cluster.image();
    const partition = this.coordinator.partitionFor(key);
    const state = image.partition(OFFSETS_TOPIC, partition);
    const broker = state === undefined || state.leader < 0 ? undefined : image.broker(state.leader);
    const listener = broker?.listeners.find((candidate) => candidate.name === 'GRPC');
    if (broker === undefined || broker.fenced || listener === undefined) {
      return { ...none, errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: `${OFFSETS_TOPIC}-${partition} has no leader now` };
    }
    return { errorCode: 0, errorMessage: '', nodeId: broker.id, host: listener.host, port: listener.port };
  }

  private createOffsetsTopic(): Promise<void> {
    this.creatingOffsetsTopic ??= (async () => {
      const live = this.cluster.image().brokers().filter((broker) => !broker.fenced).length;
      const replicationFactor = Math.max(1, Math.min(this.cluster.offsetsTopicReplicationFactor, live));
      if (replicationFactor < this.cluster.offsetsTopicReplicationFactor) {
        this.logger.warn({ topic: OFFSETS_TOPIC, replicationFactor, configured: this.cluster.offsetsTopicReplicationFactor, liveBrokers: live }, 'creating the offsets topic with fewer replicas than offsets.topic.replication.factor: the cluster has fewer live brokers');
      }
      const response = await this.cluster.controller.createTopics({
        topics: [
          {
            name: OFFSETS_TOPIC,
            numPartitions: this.cluster.offsetsTopicPartitions,
            replicationFactor,
            // Compacted, as Kafka's: the latest record per group and per committed partition stays
            // (nothing goes by time or size); 100 MiB segments (offsets.topic.segment.bytes) so
            // that rolled segments reach the cleaner.
            configs: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'segment.bytes', value: '104857600' },
            ],
          },
        ],
        validateOnly: false,
      });
      const code = response.errorCode !== 0 ? response.errorCode : (response.topics[0]?.errorCode ?? 0);
      if (code !== 0 && code !== errorCode('TOPIC_ALREADY_EXISTS')) throw Object.assign(new Error(response.errorMessage || response.topics[0]?.errorMessage || `error ${code}`), { errorCode: code });
      if (code === 0) await this.cluster.waitForMetadata(Number(response.metadataOffset), OFFSETS_TOPIC_PROPAGATION_TIMEOUT_MS);
    })().finally(() => {
      this.creatingOffsetsTopic = null;
    });
    return this.creatingOffsetsTopic;
  }

}

/** group_instance_id: empty in proto3 where Kafka's is null (a dynamic member). */
function instanceIdOf(field: string): string | null {
  return field === '' ? null : field;
}

/** The client's address as Kafka shows it in a group's members: '/host'. */
function peerHost(peer: string): string {
  const host = peer.replace(/^ipv[46]:/, '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return `/${host}`;
}
