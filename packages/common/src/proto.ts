import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ClientProto } from './generated/client.js';
import type { ProtoGrpcType as ControllerProto } from './generated/controller.js';
import type { ProtoGrpcType as GroupProto } from './generated/group.js';
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

/** A loader for one .proto file of proto/runnel/v1: parsed on first use, then kept. */
function protoLoaderFor<T>(file: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(`runnel/v1/${file}`, LOADER_OPTIONS)) as unknown as T);
}

/** The `runnel.v1` package of client.proto, as grpc-js service constructors and definitions. */
export const loadClientProto = protoLoaderFor<ClientProto>('client.proto');

/** The `runnel.v1` package of raft.proto: the transport between members of a Raft group. */
export const loadRaftProto = protoLoaderFor<RaftProto>('raft.proto');

/** The `runnel.v1` package of controller.proto: the metadata quorum's API for brokers and the CLI. */
export const loadControllerProto = protoLoaderFor<ControllerProto>('controller.proto');

/** The `runnel.v1` package of replication.proto: followers fetching from leaders. */
export const loadReplicationProto = protoLoaderFor<ReplicationProto>('replication.proto');

/** The `runnel.v1` package of group.proto: consumer groups and committed offsets. */
export const loadGroupProto = protoLoaderFor<GroupProto>('group.proto');
