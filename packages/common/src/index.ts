export * from './errors.js';
export * from './config.js';
export * from './brokerConfig.js';
export * from './logger.js';
export * from './proto.js';
export * from './varint.js';
export * from './crc32c.js';
export * from './recordBatch.js';
export type * as ClientApi from './generated/runnel/v1/index.js';
