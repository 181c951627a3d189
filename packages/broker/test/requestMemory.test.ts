// queued.max.request.bytes: a broker-wide bound on the bytes of unanswered requests. A client over
// it is slowed (its stream stops being read), never refused, and every answer still matches its
// request. The gRPC door runs for real on loopback; the ReplicaManager below it is a stand-in
// that holds each produce for a while and records how many bytes it held at once.
import * as grpc from '@grpc/grpc-js';
import { createLogger, loadClientProto, type ClientApi } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientApiService } from '../src/clientApi.js';
import type { LogManager } from '../src/logManager.js';
import { BrokerMetrics } from '../src/metrics.js';
import type { ProduceInput, ProduceResult, ReplicaManager } from '../src/replicaManager.js';
import type { TopicAdmin } from '../src/topicAdmin.js';
import { RequestMemoryPool } from '../src/requestMemoryPool.js';

describe('RequestMemoryPool', () => {
  it('grants in arrival order, never above its capacity, and takes an oversized request alone', () => {
    const pool = new RequestMemoryPool(100);
    const granted: string[] = [];
    expect(pool.acquire(60, () => granted.push('a'))).toBe(true);
    expect(pool.acquire(50, () => granted.push('b'))).toBe(false);
    expect(pool.acquire(10, () => granted.push('c'))).toBe(false); // fits, but b came first
    expect(pool.acquire(500, () => granted.push('big'))).toBe(false);
    pool.release(60);
    expect(granted).toEqual(['b', 'c']);
    pool.release(50);
    pool.release(10);
    expect(granted).toEqual(['b', 'c', 'big']);
    expect(pool.usedBytes).toBe(500);
    pool.release(500);
    expect(pool.peakBytes).toBe(500);
    expect(() => pool.release(1)).toThrow(/invariant/);
  });
});

class SlowReplicas {
  heldBytes = 0;
  peakHeldBytes = 0;
  async produce(_acks: number, inputs: readonly ProduceInput[]): Promise<ProduceResult[]> {
    const bytes = inputs.reduce((sum, input) => sum + input.records.length, 0);
    this.heldBytes += bytes;
    this.peakHeldBytes = Math.max(this.peakHeldBytes, this.heldBytes);
    await new Promise((resolve) => setTimeout(resolve, 30));
    this.heldBytes -= bytes;
    // The answer echoes what it was given: a mixed-up answer shows in the base offset.
    return inputs.map((input) => ({ topic: input.topic, partition: input.partition, errorCode: 0, errorMessage: '', baseOffset: input.records[0]!, logAppendTime: -1, logStartOffset: 0 }));
  }
}

describe('the gRPC door under queued.max.request.bytes', () => {
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;
  afterEach(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('slows streams that would exceed the bound, and answers every request correctly', async () => {
    const replicas = new SlowReplicas();
    const capacityBytes = 1024 * 1024;
    const service = new ClientApiService(
      { cluster: {} } as TopicAdmin,
      {} as LogManager,
      replicas as unknown as ReplicaManager,
      new BrokerMetrics(),
      createLogger({ name: 'test', level: 'silent' }),
      new RequestMemoryPool(capacityBytes),
    );
    server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
    server.addService(loadClientProto().runnel.v1.ClientApi.service, service.handlers());
    const port = await new Promise<number>((resolve, reject) => server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    const Client = loadClientProto().runnel.v1.ClientApi;
    const api = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 * 1024 * 1024 });
    client = api;

    const streams = 3;
    const requestsPerStream = 10;
    const requestBytes = 300 * 1024;
    const answers = await Promise.all(
      Array.from({ length: streams }, (_, s) => {
        const call = api.Produce();
        const received: ClientApi.ProduceResponse__Output[] = [];
        return new Promise<ClientApi.ProduceResponse__Output[]>((resolve, reject) => {
          call.on('data', (response: ClientApi.ProduceResponse__Output) => {
            received.push(response);
            if (received.length === requestsPerStream) {
              call.end();
              resolve(received);
            }
          });
          call.on('error', reject);
          for (let k = 0; k < requestsPerStream; k++) {
            const marker = (s * requestsPerStream + k) % 256;
            call.write({ requestId: s * 1000 + k, acks: 1, timeoutMs: 5_000, partitions: [{ topic: 't', partition: s, records: Buffer.alloc(requestBytes, marker) }] });
          }
        });
      }),
    );
    answers.forEach((responses, s) => {
      expect(responses.map((response) => Number(response.requestId)).sort((a, b) => a - b)).toEqual(Array.from({ length: requestsPerStream }, (_, k) => s * 1000 + k));
      for (const response of responses) {
        const k = Number(response.requestId) - s * 1000;
        expect(response.partitions[0]!.partition).toBe(s);
        expect(Number(response.partitions[0]!.baseOffset)).toBe((s * requestsPerStream + k) % 256);
      }
    });
    // Thirty 300 KiB requests arrived at once; at most three fit under 1 MiB.
    expect(replicas.peakHeldBytes).toBeLessThanOrEqual(capacityBytes);
    expect(replicas.peakHeldBytes).toBeGreaterThanOrEqual(requestBytes);
  });
});
