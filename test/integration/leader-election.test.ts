// Leader elections an operator asks for, on a real cluster (node 1 the controller, brokers 2-4, so
// that two brokers can die while the controller quorum stands): Kafka's ElectLeaders through
// the Kafka door (raw requests) and `runnel partitions elect-leaders` through the gRPC door. A
// preferred election after a SIGKILLed preferred replica came back moves leadership home; an
// unclean one brings back a partition whose only ISR member died, on a replica outside the ISR.
import { describe, expect, it } from 'vitest';
import { Admin, Producer } from '@runnel/client';
import { errorCode } from '@runnel/common';
import { KafkaWireClient, type LocalCluster } from '@runnel/testkit';
import { runCli } from './cli.js';
import { useCluster, waitFor } from './harness.js';

const SESSION_TIMEOUT_MS = 3000;

function adminOf(cluster: LocalCluster): Admin {
  return new Admin({ bootstrap: cluster.running().filter((node) => node.nodeId !== 1).map((node) => node.bootstrap) });
}

async function partitionState(cluster: LocalCluster, topic: string, partition: number) {
  const admin = adminOf(cluster);
  try {
    const [description] = await admin.describeTopics([topic]);
    return description!.partitions.find((candidate) => candidate.partition === partition)!;
  } finally {
    await admin.close();
  }
}

describe('leader elections on request', () => {
  // No automatic preferred-leader rebalance: the elections here are the ones the test asks for.
  const fixture = useCluster(
    4,
    { 'auto.leader.rebalance.enable': 'false', 'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS) },
    { roles: (id) => (id === 1 ? 'controller' : 'broker') },
  );
  const brokers = (cluster: LocalCluster) => cluster.running().filter((node) => node.nodeId !== 1);

  it('preferred: after its preferred replica was SIGKILLed and came back, ElectLeaders moves a partition home; acknowledged records stay', async () => {
    const cluster = fixture.cluster;
    const admin = adminOf(cluster);
    const producer = new Producer({ bootstrap: brokers(cluster).map((node) => node.bootstrap), acks: -1 });
    try {
      await admin.createTopics([{ name: 'home', partitions: 3, replicationFactor: 3 }]);
      const target = await waitFor('a leader for home-0', async () => {
        const state = await partitionState(cluster, 'home', 0);
        return state.leader >= 0 ? state : undefined;
      }, 15_000);
      const preferred = target.replicas[0]!;
      const sent: string[] = [];
      for (let k = 0; k < 50; k++) {
        sent.push(`before-${k}`);
        await producer.send({ topic: 'home', partition: 0, value: `before-${k}` });
      }

      await cluster.node(preferred).kill('SIGKILL');
      await waitFor(`home-0 led by another node than ${preferred}`, async () => {
        const state = await partitionState(cluster, 'home', 0);
        return state.leader >= 0 && state.leader !== preferred ? true : undefined;
      }, SESSION_TIMEOUT_MS + 15_000);
      for (let k = 0; k < 50; k++) {
        sent.push(`during-${k}`);
        await producer.send({ topic: 'home', partition: 0, value: `during-${k}` });
      }
      await cluster.node(preferred).launch();
      await waitFor(`node ${preferred} back in the ISR of home-0`, async () => ((await partitionState(cluster, 'home', 0)).isr.includes(preferred) ? true : undefined), 30_000);
      expect((await partitionState(cluster, 'home', 0)).leader).not.toBe(preferred);

      // Kafka's ElectLeaders v2, preferred, for home-0 and a partition that does not exist.
      const other = brokers(cluster).find((node) => node.nodeId !== preferred)!;
      const client = await KafkaWireClient.connect(other.kafkaBootstrap, 'leader-election-it');
      try {
        const answer = await client.send('ElectLeaders', 2, { electionType: 0, topicPartitions: [{ topic: 'home', partitions: [0, 7] }], timeoutMs: 30_000 });
        expect(answer.errorCode).toBe(0);
        expect(answer.replicaElectionResults).toEqual([
          {
            topic: 'home',
            partitionResult: [
              { partitionId: 0, errorCode: 0, errorMessage: null },
              { partitionId: 7, errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION'), errorMessage: expect.stringMatching(/home-7/) },
            ],
          },
        ]);
        // Answered once the answering broker has applied it: its metadata names the new leader.
        const metadata = await client.send('Metadata', 12, { topics: [{ name: 'home', topicId: '00000000-0000-0000-0000-000000000000' }], allowAutoTopicCreation: false });
        expect(metadata.topics[0]!.partitions.find((partition) => partition.partitionIndex === 0)!.leaderId).toBe(preferred);
        const again = await client.send('ElectLeaders', 2, { electionType: 0, topicPartitions: [{ topic: 'home', partitions: [0] }], timeoutMs: 30_000 });
        expect(again.replicaElectionResults[0]!.partitionResult[0]!.errorCode).toBe(errorCode('ELECTION_NOT_NEEDED'));
        const badType = await client.send('ElectLeaders', 2, { electionType: 5, topicPartitions: [{ topic: 'home', partitions: [0] }], timeoutMs: 30_000 });
        expect(badType.errorCode).toBe(errorCode('INVALID_REQUEST'));
      } finally {
        client.close();
      }

      // The CLI over the gRPC door: nothing left to elect anywhere.
      const cli = await runCli(['--bootstrap', brokers(cluster).map((node) => node.bootstrap).join(','), 'partitions', 'elect-leaders', '--type', 'preferred', '--topic', 'home']);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/ELECTION_NOT_NEEDED/);

      for (let k = 0; k < 20; k++) {
        sent.push(`after-${k}`);
        await producer.send({ topic: 'home', partition: 0, value: `after-${k}` });
      }
      const read = await runCli(['--bootstrap', brokers(cluster).map((node) => node.bootstrap).join(','), 'consume', 'home', '--partition', '0', '--offset', 'earliest', '--max-messages', String(sent.length), '--timeout-ms', '20000']);
      expect(read.code, read.stderr).toBe(0);
      expect(read.stdout.trim().split('\n')).toEqual(sent);
    } finally {
      await producer.close();
      await admin.close();
    }
  });

  it('unclean: a partition whose only ISR member died comes back on a live replica outside the ISR, and only when asked', async () => {
    const cluster = fixture.cluster;
    const admin = adminOf(cluster);
    try {
      await admin.createTopics([{ name: 'lonely', partitions: 1, replicationFactor: 2 }]);
      const state = await waitFor('a leader for lonely-0', async () => {
        const current = await partitionState(cluster, 'lonely', 0);
        return current.leader >= 0 ? current : undefined;
      }, 15_000);
      const [first, second] = state.replicas as [number, number];
      // `second` dies: the ISR shrinks to `first`; then `first` dies: offline, ISR [first].
      await cluster.node(second).kill('SIGKILL');
      await waitFor(`lonely-0's ISR without ${second}`, async () => (!(await partitionState(cluster, 'lonely', 0)).isr.includes(second) ? true : undefined), SESSION_TIMEOUT_MS + 15_000);
      await cluster.node(first).kill('SIGKILL');
      await waitFor('lonely-0 offline', async () => ((await partitionState(cluster, 'lonely', 0)).leader === -1 ? true : undefined), SESSION_TIMEOUT_MS + 15_000);
      await cluster.node(second).launch();
      const bootstrap = brokers(cluster).map((node) => node.bootstrap).join(',');

      // Without the operator's word it stays offline; a preferred election cannot help either.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await partitionState(cluster, 'lonely', 0)).leader).toBe(-1);
      const preferred = await runCli(['--bootstrap', bootstrap, 'partitions', 'elect-leaders', '--type', 'preferred', '--topic', 'lonely', '--partition', '0']);
      expect(preferred.code).toBe(1);
      expect(preferred.stdout).toMatch(/PREFERRED_LEADER_NOT_AVAILABLE/);

      const unclean = await runCli(['--bootstrap', bootstrap, 'partitions', 'elect-leaders', '--type', 'unclean', '--topic', 'lonely', '--format', 'json']);
      expect(unclean.code, unclean.stderr).toBe(0);
      expect(JSON.parse(unclean.stdout)).toEqual([{ topic: 'lonely', partition: 0, error: null, message: null }]);
      const after = await partitionState(cluster, 'lonely', 0);
      expect(after.leader).toBe(second);
      expect(after.isr).toEqual([second]);
      // And it takes writes again.
      const producer = new Producer({ bootstrap: brokers(cluster).map((node) => node.bootstrap), acks: -1 });
      try {
        await producer.send({ topic: 'lonely', partition: 0, value: 'back' });
      } finally {
        await producer.close();
      }
      await cluster.node(first).launch();
    } finally {
      await admin.close();
    }
  });

  it('refuses a request naming nothing, with one line', async () => {
    const result = await runCli(['--bootstrap', brokers(fixture.cluster).map((node) => node.bootstrap).join(','), 'partitions', 'elect-leaders', '--type', 'preferred']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('runnel: name the partitions with --topic (and --partition), or give --all');
  });
});
