// The group APIs onto the same GroupCoordinator the gRPC GroupApi calls: FindCoordinator answers
// with the coordinator's PLAINTEXT address; membership (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), offsets (OffsetCommit, OffsetFetch) and the admin calls (DescribeGroups,
// ListGroups, DeleteGroups) translate Kafka's versions into the coordinator's one shape and back.
import { errorCode } from '@runnel/common';
import type { CoordinatorAddress } from '../group/coordinatorLocator.js';
import { describeGroupOrDead, type CommittedOffset } from '../group/groupCoordinator.js';
import type { KafkaDoorBroker, KafkaHandlers } from './kafkaRequestHandler.js';
import { flatten } from './nesting.js';

/** FindCoordinator's key types: 0 group, 1 transaction. */
const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

/** Committed offsets by topic, topics in the order they first appear (OffsetFetch's response shape). */
function byTopic(offsets: readonly CommittedOffset[], withLeaderEpoch: boolean) {
  const topics = new Map<string, Array<{ partitionIndex: number; committedOffset: number; committedLeaderEpoch?: number; metadata: string; errorCode: number }>>();
  for (const entry of offsets) {
    let partitions = topics.get(entry.topic);
    if (partitions === undefined) topics.set(entry.topic, (partitions = []));
    partitions.push({
      partitionIndex: entry.partition,
      committedOffset: entry.offset,
      ...(withLeaderEpoch ? { committedLeaderEpoch: entry.leaderEpoch } : {}),
      metadata: entry.metadata,
      errorCode: 0,
    });
  }
  return [...topics].map(([name, partitions]) => ({ name, partitions }));
}

export function groupHandlers(broker: KafkaDoorBroker): Pick<
  KafkaHandlers,
  'FindCoordinator' | 'JoinGroup' | 'SyncGroup' | 'Heartbeat' | 'LeaveGroup' | 'OffsetCommit' | 'OffsetFetch' | 'DescribeGroups' | 'ListGroups' | 'DeleteGroups'
> {
  const coordinator = broker.coordinator;

  const findOne = async (key: string, keyType: number): Promise<CoordinatorAddress> => {
    const found: CoordinatorAddress =
      keyType === KEY_TYPE_GROUP
        ? await broker.coordinatorLocator.find(key, 'PLAINTEXT')
        : {
            errorCode: errorCode('INVALID_REQUEST'),
            errorMessage: keyType === KEY_TYPE_TRANSACTION ? 'there is no transaction coordinator: Runnel does not support transactions yet' : `unknown coordinator key type ${keyType}`,
            nodeId: -1,
            host: '',
            port: 0,
          };
    // Kafka's "no node" on an error: id -1, no host, port -1.
    return found.errorCode === 0 ? found : { ...found, nodeId: -1, host: '', port: -1 };
  };

  return {
    FindCoordinator: async ({ apiVersion, body }) => {
      if (apiVersion >= 4) {
        const coordinators = await Promise.all(body.coordinatorKeys.map(async (key) => ({ key, ...(await findOne(key, body.keyType)) })));
        return { throttleTimeMs: 0, coordinators };
      }
      const found = await findOne(body.key, body.keyType);
      return { throttleTimeMs: 0, ...found, errorMessage: found.errorCode === 0 ? null : found.errorMessage };
    },

    JoinGroup: async ({ apiVersion, body }, client) => {
      const response = await coordinator.join(body.groupId, {
        memberId: body.memberId,
        groupInstanceId: body.groupInstanceId,
        clientId: client.clientId ?? '',
        clientHost: client.clientHost,
        protocolType: body.protocolType,
        // Copies: the group keeps them for its life, the request's bytes are a view of a socket chunk.
        protocols: body.protocols.map((protocol) => ({ name: protocol.name, metadata: Buffer.from(protocol.metadata) })),
        sessionTimeoutMs: body.sessionTimeoutMs,
        // v0 has no rebalance timeout: Kafka uses the session timeout for it.
        rebalanceTimeoutMs: apiVersion === 0 ? body.sessionTimeoutMs : body.rebalanceTimeoutMs,
        // From v4 a first join is answered MEMBER_ID_REQUIRED with the id to join with (KIP-394).
        requireKnownMemberId: apiVersion >= 4,
      });
      return {
        throttleTimeMs: 0,
        errorCode: response.errorCode,
        generationId: response.generationId,
        protocolType: response.protocolType,
        // Nullable only from v7.
        protocolName: apiVersion >= 7 ? response.protocolName : (response.protocolName ?? ''),
        leader: response.leader,
        memberId: response.memberId,
        members: response.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId, metadata: member.metadata })),
      };
    },

    SyncGroup: async ({ body }) => {
      const response = await coordinator.sync(body.groupId, {
        memberId: body.memberId,
        groupInstanceId: body.groupInstanceId,
        generationId: body.generationId,
        protocolType: body.protocolType,
        protocolName: body.protocolName,
        assignments: body.assignments.map((entry) => ({ memberId: entry.memberId, assignment: Buffer.from(entry.assignment) })),
      });
      return { throttleTimeMs: 0, errorCode: response.errorCode, protocolType: response.protocolType, protocolName: response.protocolName, assignment: response.assignment };
    },

    Heartbeat: async ({ body }) => ({
      throttleTimeMs: 0,
      errorCode: coordinator.heartbeat(body.groupId, body.memberId, body.generationId, body.groupInstanceId),
    }),

    LeaveGroup: async ({ apiVersion, body }) => {
      // v0-2 name one member; v3+ a batch, each with its own answer.
      const members = apiVersion >= 3 ? body.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId })) : [{ memberId: body.memberId, groupInstanceId: null }];
      const result = coordinator.leave(body.groupId, members);
      if (apiVersion < 3) return { throttleTimeMs: 0, errorCode: result.errorCode !== 0 ? result.errorCode : (result.members[0] ?? 0) };
      return {
        throttleTimeMs: 0,
        errorCode: result.errorCode,
        members: result.errorCode !== 0 ? [] : members.map((member, k) => ({ ...member, errorCode: result.members[k] ?? 0 })),
      };
    },

    OffsetCommit: async ({ apiVersion, body }) => {
      const { flat, regroup } = flatten(
        body.topics,
        (topic) => topic.partitions,
        (topic, partition) => ({ topic: topic.name, partition: partition.partitionIndex, offset: Number(partition.committedOffset), leaderEpoch: partition.committedLeaderEpoch, metadata: partition.committedMetadata ?? '' }),
      );
      // v0 carries no member or generation: a commit from outside any group's generation.
      const codes = await coordinator.commitOffsets(body.groupId, apiVersion === 0 ? '' : body.memberId, body.generationIdOrMemberEpoch, flat, body.groupInstanceId);
      return {
        throttleTimeMs: 0,
        topics: regroup(codes, (topic, own) => ({ name: topic.name, partitions: topic.partitions.map((partition, k) => ({ partitionIndex: partition.partitionIndex, errorCode: own[k]! })) })),
      };
    },

    OffsetFetch: async ({ apiVersion, body }) => {
      const withLeaderEpoch = apiVersion >= 5;
      const fetchGroup = (groupId: string, topics: ReadonlyArray<{ name: string; partitionIndexes: readonly number[] }> | null) => {
        const wanted = topics === null ? null : topics.flatMap((topic) => topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition })));
        return coordinator.fetchOffsets(groupId, wanted);
      };
      if (apiVersion >= 8) {
        return {
          throttleTimeMs: 0,
          groups: body.groups.map((group) => {
            const result = fetchGroup(group.groupId, group.topics);
            return { groupId: group.groupId, topics: result.errorCode === 0 ? byTopic(result.offsets, true) : [], errorCode: result.errorCode };
          }),
        };
      }
      const result = fetchGroup(body.groupId, body.topics);
      if (result.errorCode === 0) return { throttleTimeMs: 0, errorCode: 0, topics: byTopic(result.offsets, withLeaderEpoch) };
      // Before v2 there is no top-level error: every partition asked for carries it.
      if (apiVersion < 2) {
        return {
          topics: (body.topics ?? []).map((topic) => ({
            name: topic.name,
            partitions: topic.partitionIndexes.map((partitionIndex) => ({ partitionIndex, committedOffset: -1, metadata: '', errorCode: result.errorCode })),
          })),
        };
      }
      return { throttleTimeMs: 0, errorCode: result.errorCode, topics: [] };
    },

    DescribeGroups: async ({ body }) => ({
      throttleTimeMs: 0,
      groups: body.groups.map((groupId) => {
        const { errorCode: code, group } = describeGroupOrDead(groupId, coordinator);
        return {
          errorCode: code,
          groupId,
          groupState: group.state,
          protocolType: group.protocolType,
          protocolData: group.protocolName,
          members: group.members.map((member) => ({
            memberId: member.memberId,
            groupInstanceId: member.groupInstanceId,
            clientId: member.clientId,
            clientHost: member.clientHost,
            memberMetadata: member.metadata,
            memberAssignment: member.assignment,
          })),
        };
      }),
    }),

    ListGroups: async ({ body }) => ({
      throttleTimeMs: 0,
      errorCode: 0,
      groups: coordinator.listGroups(body.statesFilter).map((group) => ({ groupId: group.groupId, protocolType: group.protocolType, groupState: group.state })),
    }),

    DeleteGroups: async ({ body }) => ({
      throttleTimeMs: 0,
      results: await Promise.all(body.groupsNames.map(async (groupId) => ({ groupId, errorCode: await coordinator.deleteGroup(groupId) }))),
    }),
  };
}
