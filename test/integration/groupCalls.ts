// Raw GroupApi calls for tests that play a group member (or a misbehaving one) by hand, below the
// client library: every field of the request is the test's choice.
import * as grpc from '@grpc/grpc-js';
import type { GroupCalls } from '@runnel/client';
import { errorCode, loadGroupProto, type GroupApi } from '@runnel/common';
import type { NodeProcess } from '@runnel/testkit';
import { waitFor } from './harness.js';

export type GroupClient = InstanceType<ReturnType<typeof loadGroupProto>['runnel']['v1']['GroupApi']>;

export function groupClient(address: string): GroupClient {
  const { GroupApi: Client } = loadGroupProto().runnel.v1;
  return new Client(address, grpc.credentials.createInsecure());
}

type Callback<Response> = (error: grpc.ServiceError | null, response: Response) => void;

/** One unary call as a promise (the generated client is callback-style), with a deadline. */
export function groupCall<M extends keyof GroupCalls>(client: GroupClient, method: M, request: GroupCalls[M][0], timeoutMs = 10_000): Promise<GroupCalls[M][1]> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    const unary = (client as unknown as Record<string, (request: GroupCalls[M][0], options: grpc.CallOptions, callback: Callback<GroupCalls[M][1]>) => void>)[method]!;
    unary.call(client, request, { deadline }, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

/** A cache of clients by address, closed together. */
export class GroupClients {
  private readonly clients = new Map<string, GroupClient>();

  get(address: string): GroupClient {
    let client = this.clients.get(address);
    if (client === undefined) this.clients.set(address, (client = groupClient(address)));
    return client;
  }

  /** The coordinator of `groupId` as the live nodes (not in `except`) answer FindCoordinator. */
  findCoordinator(nodes: readonly NodeProcess[], groupId: string, except: readonly number[] = []): Promise<GroupApi.FindCoordinatorResponse__Output> {
    return waitFor(
      `a coordinator for ${groupId}`,
      async () => {
        for (const node of nodes.filter((candidate) => !except.includes(candidate.nodeId))) {
          const found = await groupCall(this.get(node.bootstrap), 'FindCoordinator', { key: groupId }).catch(() => undefined);
          if (found?.errorCode === errorCode('NONE') && !except.includes(found.nodeId)) return found;
        }
        return undefined;
      },
      30_000,
      200,
    );
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
