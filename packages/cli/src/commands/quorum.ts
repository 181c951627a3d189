// `runnel quorum describe | add-voter | remove-voter`: the controller quorum's membership, asked
// of the controllers themselves (ControllerApi on their CONTROLLER listeners, as Kafka's
// `kafka-metadata-quorum --bootstrap-controller`), so it works while no broker is up. A member that
// is not the active controller answers NOT_CONTROLLER with the leader's address; we follow it.
import * as grpc from '@grpc/grpc-js';
import { loadControllerProto, type ClientApi as Pb } from '@runnel/common';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';

const NOT_CONTROLLER = 41;
const RPC_TIMEOUT_MS = 5_000;

type Unary<Req, Res> = (request: Req, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: Res) => void) => void;

/** '4@host:9295' → its parts; a clear error otherwise. */
export function parseVoter(text: string): { nodeId: number; address: string } {
  const match = /^(\d+)@(.+:\d+)$/.exec(text.trim());
  if (match === null) throw new Error(`'${text}' is not ID@HOST:PORT (the new member's node id and its CONTROLLER listener, e.g. 4@10.0.0.4:9295)`);
  return { nodeId: Number(match[1]), address: match[2]! };
}

/** Calls the active controller, starting at the bootstrap addresses and following redirects, until `timeoutMs`. */
async function callController<Res extends { errorCode: number; errorMessage: string; controllerAddress: string }>(
  bootstrap: string,
  timeoutMs: number,
  call: (client: Pb.ControllerApiClient, deadline: number) => Promise<Res>,
): Promise<Res> {
  const addresses = bootstrap.split(',').map((address) => address.trim()).filter((address) => address !== '');
  if (addresses.length === 0) throw new Error('--bootstrap-controller names no controller');
  const Client = loadControllerProto().runnel.v1.ControllerApi;
  const clients = new Map<string, Pb.ControllerApiClient>();
  const clientOf = (address: string) => {
    let client = clients.get(address);
    if (client === undefined) clients.set(address, (client = new Client(address, grpc.credentials.createInsecure())));
    return client;
  };
  const deadline = Date.now() + timeoutMs;
  let target = addresses[0]!;
  let last = 'no attempt';
  try {
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const response = await call(clientOf(target), deadline);
        if (response.errorCode !== NOT_CONTROLLER) return response;
        last = `${target}: ${response.errorMessage}`;
        target = response.controllerAddress !== '' && response.controllerAddress !== target ? response.controllerAddress : addresses[(addresses.indexOf(target) + 1) % addresses.length] ?? addresses[0]!;
      } catch (error) {
        last = `${target}: ${(error as Error).message}`;
        target = addresses[(addresses.indexOf(target) + 1) % addresses.length] ?? addresses[0]!;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, 50 * 2 ** Math.min(attempt, 4))));
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
  throw new Error(`no active controller answered within ${timeoutMs} ms (last: ${last})`);
}

function unary<Req, Res>(method: Unary<Req, Res>, request: Req, deadline: number): Promise<Res> {
  return new Promise((resolve, reject) =>
    method(request, { deadline }, (error, response) => (error || response === undefined ? reject(error ?? new Error('no response')) : resolve(response))),
  );
}

function memberJson(member: Pb.QuorumMember__Output): object {
  return { id: member.nodeId, address: member.address, logEndOffset: Number(member.matchIndex), lag: Number(member.lag), lastContactMs: Number(member.lastContactMs) };
}

export async function quorumDescribe(bootstrap: string, format: OutputFormat): Promise<void> {
  const response = await callController(bootstrap, 15_000, (client, deadline) =>
    unary(client.describeQuorum.bind(client) as Unary<Pb.DescribeQuorumRequest, Pb.DescribeQuorumResponse__Output>, {}, Math.min(deadline, Date.now() + RPC_TIMEOUT_MS)),
  );
  if (response.errorCode !== 0) throw new Error(`describe quorum failed (error ${response.errorCode}): ${response.errorMessage}`);
  if (format === 'json') {
    printJson({
      leaderId: response.controllerId,
      term: Number(response.term),
      commitIndex: Number(response.commitIndex),
      voters: response.voters.map(memberJson),
      learners: response.learners.map(memberJson),
    });
    return;
  }
  printLine(`leader ${response.controllerId}, term ${response.term}, commit index ${response.commitIndex}`);
  const unknown = (value: number | string) => (Number(value) < 0 ? '-' : String(value));
  const rows = [
    ...response.voters.map((member) => ['voter', member] as const),
    ...response.learners.map((member) => ['learner', member] as const),
  ].map(([role, member]) => [
    member.nodeId === response.controllerId ? `${member.nodeId} (leader)` : String(member.nodeId),
    role,
    member.address,
    unknown(member.matchIndex),
    unknown(member.lag),
    unknown(member.lastContactMs),
  ]);
  printLine(renderTable(['ID', 'ROLE', 'ADDRESS', 'LOG END', 'LAG', 'LAST CONTACT MS'], rows));
}

export async function quorumAddVoter(bootstrap: string, voter: string, options: { timeoutS: number }): Promise<void> {
  const { nodeId, address } = parseVoter(voter);
  printLine(`adding node ${nodeId} at ${address}: as a learner first, promoted to voter once caught up (up to ${options.timeoutS} s)`);
  const catchUpTimeoutMs = options.timeoutS * 1000;
  const response = await callController(bootstrap, catchUpTimeoutMs + 30_000, (client, deadline) =>
    unary(client.addRaftVoter.bind(client) as Unary<Pb.AddRaftVoterRequest, Pb.RaftVoterChangeResponse__Output>, { nodeId, address, catchUpTimeoutMs }, deadline),
  );
  for (const line of response.progress) printLine(line);
  if (response.errorCode !== 0) throw new Error(`add-voter ${nodeId} failed: ${response.errorMessage}`);
}

export async function quorumRemoveVoter(bootstrap: string, nodeId: number): Promise<void> {
  const response = await callController(bootstrap, 30_000, (client, deadline) =>
    unary(client.removeRaftVoter.bind(client) as Unary<Pb.RemoveRaftVoterRequest, Pb.RaftVoterChangeResponse__Output>, { nodeId }, Math.min(deadline, Date.now() + 20_000)),
  );
  if (response.errorCode !== 0) throw new Error(`remove-voter ${nodeId} failed: ${response.errorMessage}`);
  for (const line of response.progress) printLine(line);
}
