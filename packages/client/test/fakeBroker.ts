// An in-memory ClientApi server for the client's tests: topics of partitions holding record
// batches, several "brokers" (gRPC servers on 127.0.0.1, port 0) sharing one state so that
// partitions can be led by different nodes, and switches that inject faults.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { decodeRecords, lastOffsetOf, listBatches, loadClientProto, readBatchHeader, setBaseOffset, validateBatch, type ClientApi, type DecodedRecord } from '@runnel/common';

export interface FakePartition {
  /** Stored batches with offsets assigned. */
  batches: Buffer[];
  logStartOffset: number;
  nextOffset: number;
  leader: number;
}

export interface FakeTopic {
  partitions: FakePartition[];
  configs: Record<string, string>;
}

/** An error to answer for a partition `times` times (Infinity: until removed). */
export interface Fault {
  topic: string;
  partition?: number;
  errorCode: number;
  times: number;
  message?: string;
}

export class FakeBroker {
  port = 0;
  constructor(
    readonly nodeId: number,
    readonly server: grpc.Server,
  ) {}
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
}

export class FakeCluster {
  readonly topics = new Map<string, FakeTopic>();
  readonly brokers: FakeBroker[] = [];
  readonly produceRequests: Array<{ nodeId: number; request: ClientApi.ProduceRequest__Output }> = [];
  readonly fetchRequests: Array<{ nodeId: number; request: ClientApi.FetchRequest__Output }> = [];
  readonly metadataRequests: ClientApi.MetadataRequest__Output[] = [];
  produceFaults: Fault[] = [];
  fetchFaults: Fault[] = [];
  createTopicFaults: Fault[] = [];
  /** Every CreatePartitions request received. */
  readonly createPartitionsRequests: ClientApi.CreatePartitionsRequest__Output[] = [];
  /** The next N produce messages end their stream with UNAVAILABLE instead of being answered. */
  killProduceStreams = 0;
  /** The next N fetch messages end their stream with UNAVAILABLE. */
  killFetchStreams = 0;
  /** The next N ListOffsets answers say NOT_LEADER_OR_FOLLOWER for every partition (metadata not yet caught up). */
  notLeaderListOffsets = 0;
  /** Metadata with allowAutoTopicCreation creates unknown topics with this many partitions. */
  autoCreatePartitions = 0;
  /** A batch larger than this is refused with MESSAGE_TOO_LARGE. */
  maxBatchBytes = 1024 * 1024;
  /** Delay before a produce answer. */
  produceDelayMs = 0;
  /** Produce requests received and not yet answered, and the most there ever were at once. */
  produceInFlight = 0;
  produceInFlightMax = 0;
  readonly clusterId = 'fake-cluster';
  /** DescribeCluster answers this error (then counts it down) while times > 0. */
  describeClusterFault: { errorCode: number; message: string; times: number } | undefined;
  /** What ElectPreferredLeaders answers. */
  electPreferredLeadersResponse: ClientApi.ElectPreferredLeadersResponse = { errorCode: 0, moved: [], notMoved: [] };
  private readonly appended = new EventEmitter();

  static async start(nodeCount = 1): Promise<FakeCluster> {
    const cluster = new FakeCluster();
    cluster.appended.setMaxListeners(1000);
    for (let nodeId = 1; nodeId <= nodeCount; nodeId++) await cluster.startBroker(nodeId);
    return cluster;
  }

  get bootstrap(): string {
    return this.brokers[0]!.address;
  }

  createTopic(name: string, partitions: number, leaders?: number[]): void {
    const list: FakePartition[] = [];
    for (let i = 0; i < partitions; i++) list.push({ batches: [], logStartOffset: 0, nextOffset: 0, leader: leaders?.[i] ?? this.brokers[i % this.brokers.length]!.nodeId });
    this.topics.set(name, { partitions: list, configs: {} });
  }

  /** Adds partitions to a topic, leaders round-robin over the brokers (as the controller would). */
  growTopic(name: string, count: number): void {
    const list = this.topics.get(name)!.partitions;
    for (let i = list.length; i < count; i++) list.push({ batches: [], logStartOffset: 0, nextOffset: 0, leader: this.brokers[i % this.brokers.length]!.nodeId });
  }

  partition(topic: string, partition: number): FakePartition {
    const found = this.topics.get(topic)?.partitions[partition];
    if (found === undefined) throw new Error(`no partition ${topic}-${partition}`);
    return found;
  }

  records(topic: string, partition: number): DecodedRecord[] {
    return this.partition(topic, partition).batches.flatMap((batch) => decodeRecords(batch));
  }

  /** Appends batches as a broker would; returns the base offset of the first. */
  append(topic: string, partition: number, records: Buffer): number {
    const state = this.partition(topic, partition);
    const baseOffset = state.nextOffset;
    for (const { position, header } of listBatches(records)) {
      const copy = Buffer.from(records.subarray(position, position + header.batchLength + 12));
      setBaseOffset(copy, 0, state.nextOffset);
      state.batches.push(copy);
      state.nextOffset += header.lastOffsetDelta + 1;
    }
    this.appended.emit('append');
    return baseOffset;
  }

  /** Drops stored batches below `offset` (as retention would). */
  truncateBefore(topic: string, partition: number, offset: number): void {
    const state = this.partition(topic, partition);
    state.batches = state.batches.filter((batch) => decodeRecords(batch).some((record) => record.offset >= offset));
    state.logStartOffset = offset;
  }

  async stop(): Promise<void> {
    await Promise.all(this.brokers.map((broker) => new Promise<void>((resolve) => broker.server.tryShutdown(() => resolve()))));
    for (const broker of this.brokers) broker.server.forceShutdown();
  }

  private takeFault(faults: Fault[], topic: string, partition: number): Fault | undefined {
    const fault = faults.find((candidate) => candidate.topic === topic && (candidate.partition === undefined || candidate.partition === partition) && candidate.times > 0);
    if (fault !== undefined) fault.times--;
    return fault;
  }

  private async startBroker(nodeId: number): Promise<void> {
    const server = new grpc.Server();
    const broker = new FakeBroker(nodeId, server);
    server.addService(loadClientProto().runnel.v1.ClientApi.service, this.handlers(nodeId));
    broker.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
    });
    this.brokers.push(broker);
  }

  private handlers(nodeId: number): ClientApi.ClientApiHandlers {
    return {
      Metadata: (call, callback) => callback(null, this.metadata(call.request)),
      CreateTopics: (call, callback) => callback(null, this.createTopics(call.request)),
      CreatePartitions: (call, callback) => callback(null, this.createPartitions(call.request)),
      DeleteTopics: (call, callback) => callback(null, this.deleteTopics(call.request)),
      ListOffsets: (call, callback) => callback(null, this.listOffsets(call.request)),
      DescribeCluster: (_call, callback) => callback(null, this.describeCluster(nodeId)),
      ElectPreferredLeaders: (_call, callback) => callback(null, this.electPreferredLeadersResponse),
      ElectLeaders: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'the fake broker elects no leaders' }),
      // Reassignment is exercised against real brokers (test/integration/reassignment.test.ts).
      AlterPartitionReassignments: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      ListPartitionReassignments: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      DescribeReplicaProgress: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      RebalanceReplicas: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      DecommissionBroker: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      // Dynamic configs are exercised against real brokers (test/integration/replication-throttle.test.ts).
      IncrementalAlterConfigs: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      DescribeDynamicConfigs: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in the fake broker' }),
      Produce: (call) => {
        call.on('data', (request: ClientApi.ProduceRequest__Output) => void this.produce(nodeId, call, request));
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
      Fetch: (call) => {
        call.on('data', (request: ClientApi.FetchRequest__Output) => void this.fetch(nodeId, call, request));
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    };
  }

  private metadata(request: ClientApi.MetadataRequest__Output): ClientApi.MetadataResponse {
    this.metadataRequests.push(request);
    const names = request.topics.length === 0 ? [...this.topics.keys()] : request.topics;
    const topics: ClientApi.TopicInfo[] = names.map((name) => {
      let topic = this.topics.get(name);
      if (topic === undefined && request.allowAutoTopicCreation && this.autoCreatePartitions > 0) {
        this.createTopic(name, this.autoCreatePartitions);
        // Like Kafka: the first answer after auto-creation has no leaders yet.
        return { name, errorCode: 5, errorMessage: 'leader not available', partitions: [], configs: [] };
      }
      if (topic === undefined) return { name, errorCode: 3, errorMessage: `topic ${name} does not exist`, partitions: [], configs: [] };
      return {
        name,
        errorCode: 0,
        partitions: topic.partitions.map((partition, id) => ({
          partition: id,
          errorCode: 0,
          leader: partition.leader,
          leaderEpoch: 1,
          replicas: [partition.leader],
          isr: partition.leader >= 0 ? [partition.leader] : [],
          logStartOffset: partition.logStartOffset,
          highWatermark: partition.nextOffset,
        })),
        configs: request.includeConfigs ? Object.entries(topic.configs).map(([key, value]) => ({ name: key, value })) : [],
      };
    });
    return {
      clusterId: this.clusterId,
      controllerId: 1,
      brokers: this.brokers.map((broker) => ({ nodeId: broker.nodeId, host: '127.0.0.1', port: broker.port, rack: broker.nodeId === 2 ? 'rack-b' : '' })),
      topics,
    };
  }

  private describeCluster(nodeId: number): ClientApi.DescribeClusterResponse {
    const fault = this.describeClusterFault;
    if (fault !== undefined && fault.times > 0) {
      fault.times--;
      return { errorCode: fault.errorCode, errorMessage: fault.message };
    }
    const metadata = this.metadata({ topics: [], allowAutoTopicCreation: false, includeConfigs: false });
    return {
      errorCode: 0,
      clusterId: this.clusterId,
      controllerId: 1,
      controllerTerm: 3,
      voters: this.brokers.map((broker) => ({ nodeId: broker.nodeId, address: `127.0.0.1:${broker.port + 1}`, logEndOffset: 10 })),
      servedBy: nodeId,
      metadataOffset: 10,
      // Reversed, so that a test sees the client sort them.
      nodes: [...this.brokers].reverse().map((broker) => ({
        nodeId: broker.nodeId,
        host: '127.0.0.1',
        port: broker.port,
        rack: broker.nodeId === 2 ? 'rack-b' : '',
        fenced: false,
        incarnationId: `incarnation-${broker.nodeId}`,
        brokerEpoch: broker.nodeId,
        inControlledShutdown: false,
        // Node 2 has lost one replica (its log failed there).
        offlineReplicas: broker.nodeId === 2 ? [{ topic: 'alpha', partition: 0 }] : [],
        // Node 1 says nothing (a broker from before log_dir_state): read as online.
        logDirState: broker.nodeId === 2 ? 'full' : '',
      })),
      topics: [...(metadata.topics ?? [])].reverse().map((topic) => ({ ...topic, partitions: [...(topic.partitions ?? [])].reverse().map((p) => ({ ...p, partitionEpoch: 2 })) })),
    };
  }

  private createTopics(request: ClientApi.CreateTopicsRequest__Output): ClientApi.CreateTopicsResponse {
    return {
      topics: request.topics.map((topic) => {
        const fault = this.takeFault(this.createTopicFaults, topic.name, 0);
        if (fault !== undefined) return { name: topic.name, errorCode: fault.errorCode, errorMessage: fault.message ?? '' };
        if (!/^[a-zA-Z0-9._-]+$/.test(topic.name)) return { name: topic.name, errorCode: 17, errorMessage: `'${topic.name}' is not a valid topic name` };
        if (this.topics.has(topic.name)) return { name: topic.name, errorCode: 36, errorMessage: `topic '${topic.name}' already exists` };
        const partitions = topic.numPartitions === -1 ? 1 : topic.numPartitions;
        if (partitions < 1) return { name: topic.name, errorCode: 37, errorMessage: 'number of partitions must be at least 1' };
        if (!request.validateOnly) {
          this.createTopic(topic.name, partitions);
          this.topics.get(topic.name)!.configs = Object.fromEntries(topic.configs.map((entry) => [entry.name, entry.value]));
        }
        return { name: topic.name, errorCode: 0, errorMessage: '' };
      }),
    };
  }

  private createPartitions(request: ClientApi.CreatePartitionsRequest__Output): ClientApi.CreatePartitionsResponse {
    this.createPartitionsRequests.push(request);
    return {
      topics: request.topics.map(({ name, count }) => {
        const topic = this.topics.get(name);
        if (topic === undefined) return { name, errorCode: 3, errorMessage: `no topic named '${name}'` };
        if (count <= topic.partitions.length) return { name, errorCode: 37, errorMessage: `the topic currently has ${topic.partitions.length} partition(s); ${count} would not be an increase` };
        if (!request.validateOnly) this.growTopic(name, count);
        return { name, errorCode: 0, errorMessage: '' };
      }),
    };
  }

  private deleteTopics(request: ClientApi.DeleteTopicsRequest__Output): ClientApi.DeleteTopicsResponse {
    return {
      topics: request.names.map((name) => (this.topics.delete(name) ? { name, errorCode: 0 } : { name, errorCode: 3, errorMessage: `topic '${name}' does not exist` })),
    };
  }

  private listOffsets(request: ClientApi.ListOffsetsRequest__Output): ClientApi.ListOffsetsResponse {
    if (this.notLeaderListOffsets > 0) {
      this.notLeaderListOffsets--;
      return { partitions: request.partitions.map(({ topic, partition }) => ({ topic, partition, errorCode: 6, offset: -1, timestamp: -1 })) };
    }
    return {
      partitions: request.partitions.map(({ topic, partition, timestamp }) => {
        const state = this.topics.get(topic)?.partitions[partition];
        if (state === undefined) return { topic, partition, errorCode: 3, offset: -1, timestamp: -1 };
        if (timestamp === -2) return { topic, partition, errorCode: 0, offset: state.logStartOffset, timestamp: -1 };
        if (timestamp === -1) return { topic, partition, errorCode: 0, offset: state.nextOffset, timestamp: -1 };
        const found = state.batches.flatMap((batch) => decodeRecords(batch)).find((record) => record.timestamp >= timestamp);
        return { topic, partition, errorCode: 0, offset: found?.offset ?? -1, timestamp: found?.timestamp ?? -1 };
      }),
    };
  }

  private async produce(nodeId: number, call: grpc.ServerDuplexStream<ClientApi.ProduceRequest__Output, ClientApi.ProduceResponse>, request: ClientApi.ProduceRequest__Output): Promise<void> {
    this.produceRequests.push({ nodeId, request });
    if (this.killProduceStreams > 0) {
      this.killProduceStreams--;
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'stream killed by the test' });
      return;
    }
    this.produceInFlight++;
    this.produceInFlightMax = Math.max(this.produceInFlightMax, this.produceInFlight);
    if (this.produceDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.produceDelayMs));
    this.produceInFlight--;
    const partitions = request.partitions.map((entry) => this.produceOne(nodeId, entry));
    if (request.acks === 0) return; // like Kafka: no answer
    call.write({ requestId: request.requestId, partitions });
  }

  private produceOne(nodeId: number, { topic, partition, records }: ClientApi.PartitionRecords__Output): ClientApi.PartitionProduceResult {
    const fail = (errorCode: number, errorMessage = ''): ClientApi.PartitionProduceResult => ({ topic, partition, errorCode, errorMessage, baseOffset: -1, logAppendTime: -1 });
    const state = this.topics.get(topic)?.partitions[partition];
    if (state === undefined) return fail(3);
    if (state.leader !== nodeId) return fail(6, `node ${nodeId} does not lead ${topic}-${partition}`);
    const fault = this.takeFault(this.produceFaults, topic, partition);
    if (fault !== undefined) return fail(fault.errorCode, fault.message);
    for (const { position, header } of listBatches(records)) {
      validateBatch(records, position);
      if (header.batchLength + 12 > this.maxBatchBytes) return fail(10, `batch of ${header.batchLength + 12} bytes is over ${this.maxBatchBytes}`);
    }
    const baseOffset = this.append(topic, partition, records);
    return { topic, partition, errorCode: 0, baseOffset, logAppendTime: -1, logStartOffset: state.logStartOffset };
  }

  private async fetch(nodeId: number, call: grpc.ServerDuplexStream<ClientApi.FetchRequest__Output, ClientApi.FetchResponse>, request: ClientApi.FetchRequest__Output): Promise<void> {
    this.fetchRequests.push({ nodeId, request });
    if (this.killFetchStreams > 0) {
      this.killFetchStreams--;
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'stream killed by the test' });
      return;
    }
    let answer = this.fetchAnswer(nodeId, request);
    const bytes = (): number => answer.reduce((sum, result) => sum + (result.records as Buffer).length, 0);
    if (bytes() < Math.max(1, request.minBytes) && request.maxWaitMs > 0 && answer.every((result) => result.errorCode === 0)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, request.maxWaitMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.appended.once('append', done);
      });
      answer = this.fetchAnswer(nodeId, request);
    }
    call.write({ requestId: request.requestId, partitions: answer });
  }

  private fetchAnswer(nodeId: number, request: ClientApi.FetchRequest__Output): ClientApi.PartitionFetchResult[] {
    return request.partitions.map(({ topic, partition, fetchOffset, partitionMaxBytes }) => {
      const state = this.topics.get(topic)?.partitions[partition];
      const empty = { topic, partition, highWatermark: state?.nextOffset ?? -1, logStartOffset: state?.logStartOffset ?? -1, records: Buffer.alloc(0) };
      if (state === undefined) return { ...empty, errorCode: 3 };
      if (state.leader !== nodeId) return { ...empty, errorCode: 6 };
      const fault = this.takeFault(this.fetchFaults, topic, partition);
      if (fault !== undefined) return { ...empty, errorCode: fault.errorCode };
      if (fetchOffset < state.logStartOffset || fetchOffset > state.nextOffset) return { ...empty, errorCode: 1 };
      const chosen: Buffer[] = [];
      let size = 0;
      for (const batch of state.batches) {
        const last = lastOffsetOf(readBatchHeader(batch)); // as a broker does: it never decodes records to serve them
        if (last < fetchOffset) continue;
        if (chosen.length > 0 && size + batch.length > partitionMaxBytes) break;
        chosen.push(batch);
        size += batch.length;
      }
      return { ...empty, errorCode: 0, records: Buffer.concat(chosen) };
    });
  }
}
