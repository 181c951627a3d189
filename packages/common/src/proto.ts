import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ClientProto } from './generated/client.js';

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
