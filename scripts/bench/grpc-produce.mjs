#!/usr/bin/env node
// The node's own produce ceiling: pre-encoded record batches sent over one gRPC Produce stream
// with N requests in flight, so no client-side record encoding is measured. Compare with
// `runnel bench produce` (the full client) and scripts/bench/partition-log.mjs (the log alone).
//
//   node scripts/bench/grpc-produce.mjs [--bootstrap 127.0.0.1:9192] [--bytes 1073741824]
//       [--record-size 1024] [--batch-bytes 16384] [--request-bytes 1048576] [--in-flight 2] [--acks 1] [--json]
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { encodeRecordBatch, loadClientProto } from '@runnel/common';

const { values } = parseArgs({
  options: {
    bootstrap: { type: 'string', default: '127.0.0.1:9192' },
    bytes: { type: 'string', default: String(1 << 30) },
    'record-size': { type: 'string', default: '1024' },
    'batch-bytes': { type: 'string', default: '16384' },
    'request-bytes': { type: 'string', default: String(1 << 20) },
    'in-flight': { type: 'string', default: '2' },
    acks: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const recordSize = Number(values['record-size']);
const inFlightMax = Number(values['in-flight']);
const acks = values.acks === 'all' ? -1 : Number(values.acks);

const { ClientApi } = loadClientProto().runnel.v1;
const client = new ClientApi(values.bootstrap, grpc.credentials.createInsecure(), {
  'grpc.max_send_message_length': 256 << 20,
  'grpc.max_receive_message_length': 256 << 20,
  'grpc-node.flow_control_window': 16 << 20,
});
const topic = `grpc-bench-${Date.now()}`;
await new Promise((resolve, reject) =>
  client.CreateTopics({ topics: [{ name: topic, numPartitions: 1, replicationFactor: -1 }] }, (error, response) => {
    if (error) return reject(error);
    if (response.topics[0].errorCode !== 0) return reject(new Error(response.topics[0].errorMessage));
    resolve();
  }),
);

const recordsPerBatch = Math.max(1, Math.floor(Number(values['batch-bytes']) / (recordSize + 10)));
const batch = encodeRecordBatch(Array.from({ length: recordsPerBatch }, () => ({ value: Buffer.alloc(recordSize, 0x61) })));
const batchesPerRequest = Math.max(1, Math.floor(Number(values['request-bytes']) / batch.length));
const records = Buffer.concat(Array.from({ length: batchesPerRequest }, () => batch));
const requests = Math.ceil(Number(values.bytes) / records.length);

const stream = client.Produce();
let sent = 0;
let answered = 0;
const started = process.hrtime.bigint();
await new Promise((resolve, reject) => {
  const pump = () => {
    while (sent < requests && sent - answered < inFlightMax) {
      stream.write({ requestId: ++sent, acks, timeoutMs: 30_000, partitions: [{ topic, partition: 0, records }] });
    }
  };
  stream.on('error', reject);
  stream.on('data', (response) => {
    const result = response.partitions[0];
    if (result.errorCode !== 0) return reject(new Error(`produce failed: ${result.errorCode} ${result.errorMessage}`));
    if (++answered === requests) resolve();
    else pump();
  });
  pump();
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
stream.end();
client.close();
const totalRecords = requests * batchesPerRequest * recordsPerBatch;
const result = {
  records: totalRecords,
  bytes: requests * records.length,
  seconds: Number(seconds.toFixed(3)),
  records_per_s: Math.round(totalRecords / seconds),
  mb_per_s: Number(((requests * records.length) / seconds / 1e6).toFixed(1)),
  request_bytes: records.length,
  in_flight: inFlightMax,
};
if (values.json) console.log(JSON.stringify(result));
else console.log(`grpc produce: ${result.records} records of ${recordSize} B in ${result.seconds} s: ${result.records_per_s} records/s, ${result.mb_per_s} MB/s (requests of ${records.length} B, ${inFlightMax} in flight)`);
