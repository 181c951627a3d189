// GroupApi calls as a bare gRPC client makes them, with no Runnel client in between: for suites
// that drive group members themselves.
import * as grpc from '@grpc/grpc-js';
import type { GroupCalls } from '@runnel/client';
import { loadGroupProto } from '@runnel/common';

export type GroupClient = InstanceType<ReturnType<typeof loadGroupProto>['runnel']['v1']['GroupApi']>;

export function groupClient(address: string): GroupClient {
  const { GroupApi: Client } = loadGroupProto().runnel.v1;
  return new Client(address, grpc.credentials.createInsecure());
}

type Callback<Response> = (error: grpc.ServiceError | null, response: Response) => void;

/** One unary call as a promise (the generated client is callback-style), with a 10 s deadline. */
export function groupCall<M extends keyof GroupCalls>(client: GroupClient, method: M, request: GroupCalls[M][0]): Promise<GroupCalls[M][1]> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10_000);
    const unary = (client as unknown as Record<string, (request: GroupCalls[M][0], options: grpc.CallOptions, callback: Callback<GroupCalls[M][1]>) => void>)[method]!;
    unary.call(client, request, { deadline }, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}
