import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ClientProto } from './generated/client.js';
import type { ProtoGrpcType as ControllerProto } from './generated/controller.js';
import type { ProtoGrpcType as RaftProto } from './generated/raft.js';
import type { ProtoGrpcType as ReplicationProto } from './generated/replication.js';

/** The repository's proto/ directory: the .proto files are loaded at run time, not copied. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  includeDirs: [PROTO_ROOT],
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let clientProto: ClientProto | undefined;

/** The `runnel.v1` package of client.proto, as grpc-js service constructors and definitions. */
export function loadClientProto(): ClientProto {
  clientProto ??= grpc.loadPackageDefinition(protoLoader.loadSync('runnel/v1/client.proto', LOADER_OPTIONS)) as unknown as ClientProto;
  return clientProto;
}

let raftProto: RaftProto | undefined;

/** The `runnel.v1` package of raft.proto: the transport between members of a Raft group. */
export function loadRaftProto(): RaftProto {
  raftProto ??= grpc.loadPackageDefinition(protoLoader.loadSync('runnel/v1/raft.proto', LOADER_OPTIONS)) as unknown as RaftProto;
  return raftProto;
}

let controllerProto: ControllerProto | undefined;

/** The `runnel.v1` package of controller.proto: the metadata quorum's API for brokers and the CLI. */
export function loadControllerProto(): ControllerProto {
  controllerProto ??= grpc.loadPackageDefinition(protoLoader.loadSync('runnel/v1/controller.proto', LOADER_OPTIONS)) as unknown as ControllerProto;
  return controllerProto;
}

let replicationProto: ReplicationProto | undefined;

/** The `runnel.v1` package of replication.proto: followers fetching from leaders. */
export function loadReplicationProto(): ReplicationProto {
  replicationProto ??= grpc.loadPackageDefinition(protoLoader.loadSync('runnel/v1/replication.proto', LOADER_OPTIONS)) as unknown as ReplicationProto;
  return replicationProto;
}
