// The gRPC door to the group coordinator (proto/runnel/v1/group.proto): it translates messages to
// GroupCoordinator calls and back, and answers FindCoordinator with the coordinator's GRPC
// address (GroupCoordinatorLocator, shared with the Kafka door).
import type * as grpc from '@grpc/grpc-js';
import type { GroupApi, Logger } from '@runnel/common';
import { serveUnary } from './unaryCall.js';
import type { GroupCoordinatorLocator } from './group/coordinatorLocator.js';
import { describeGroupOrDead, type GroupCoordinator } from './group/groupCoordinator.js';
import type { BrokerMetrics } from './metrics.js';

export class GroupApiService {
  constructor(
    private readonly locator: GroupCoordinatorLocator,
    private readonly coordinator: GroupCoordinator,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
  ) {}

  handlers(): GroupApi.GroupApiHandlers {
    return {
      FindCoordinator: (call, callback) => this.serve('findCoordinator', call, callback, (request) => this.locator.find(request.key, 'GRPC')),
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
          const groups = this.coordinator.listGroups(request.statesFilter);
          return { errorCode: 0, errorMessage: '', groups: groups.map((group) => ({ groupId: group.groupId, protocolType: group.protocolType, groupState: group.state })) };
        }),
      DescribeGroups: (call, callback) =>
        this.serve('describeGroups', call, callback, async (request) => ({
          groups: request.groups.map((groupId) => {
            const { errorCode: code, group } = describeGroupOrDead(groupId, this.coordinator);
            return {
              errorCode: code,
              errorMessage: '',
              groupId,
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
