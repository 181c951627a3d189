// Growing a topic on a real 3-node cluster with `runnel topic alter --partitions`: a running producer
// reaches the new partitions and a running 2-member group rebalances onto them at their next
// metadata refresh, with every acknowledged record consumed; shrinking is refused; and an alter
// acknowledged just before a SIGKILL of the active controller survives the failover.
import { describe, expect, it } from 'vitest';
import { Admin, Producer } from '@runnel/client';
import type { LocalCluster } from '@runnel/testkit';
import { runCli } from './cli.js';
import { startMember, startProducing, type Member } from './groupMembers.js';
import { useCluster, waitFor } from './harness.js';

/** Short, so that clients notice the new partitions within a few seconds. */
const METADATA_MAX_AGE_MS = 1000;
const SESSION_TIMEOUT_MS = 3000;

function assigned(members: readonly Member[]): number[] {
  return members.flatMap((member) => member.consumer.assignment().map((entry) => entry.partition)).sort((a, b) => a - b);
}

function adminOf(cluster: LocalCluster, except: number[] = []): Admin {
  return new Admin({ bootstrap: cluster.running().filter((node) => !except.includes(node.nodeId)).map((node) => node.bootstrap), requestTimeoutMs: 3000 });
}

describe('growing a topic (runnel topic alter --partitions)', () => {
  const fixture = useCluster(3, {
    'offsets.topic.num.partitions': '3',
    'group.initial.rebalance.delay.ms': '0',
    'group.min.session.timeout.ms': '1000',
    'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS),
  });
  const bootstrap = () => fixture.cluster.running().map((node) => node.bootstrap);
  const cli = (args: string[]) => runCli(['--bootstrap', bootstrap().join(','), ...args]);

  it('3 -> 6 while a producer and a 2-member group run: records reach the new partitions, the group takes all 6, every acknowledged record is consumed', async () => {
    const topic = 'growing';
    const admin = adminOf(fixture.cluster);
    await admin.createTopics([{ name: topic, partitions: 3, replicationFactor: 3 }]);
    let producer: ReturnType<typeof startProducing> | null = startProducing(bootstrap(), topic, 12, 100_000, { metadataMaxAgeMs: METADATA_MAX_AGE_MS });
    const memberOptions = { bootstrap: bootstrap(), groupId: 'growers', autoOffsetReset: 'earliest', sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, metadataMaxAgeMs: METADATA_MAX_AGE_MS } as const;
    const members = [startMember(memberOptions, [topic]), startMember(memberOptions, [topic])];
    const acked = producer.acked;
    try {
      await waitFor('the group to share partitions 0-2', () => (assigned(members).join() === '0,1,2' && members.every((member) => member.consumer.assignment().length > 0) ? true : undefined), 30_000);
      const altered = await cli(['topic', 'alter', topic, '--partitions', '6']);
      expect(altered).toMatchObject({ code: 0, stdout: `Altered topic ${topic}: 6 partitions.\n` });
      // The node that answered the CLI has applied the new partitions; the others follow the metadata log.
      const described = await waitFor('6 partitions in the metadata', async () => {
        const [topicDescription] = await admin.describeTopics([topic]);
        return topicDescription!.partitions.length === 6 ? topicDescription : undefined;
      }, 10_000);
      for (const partition of described.partitions.slice(3)) {
        expect([...partition.replicas].sort()).toEqual([1, 2, 3]);
        expect(partition.leader).toBe(partition.replicas[0]);
      }

      await waitFor('acknowledged records on partitions 3, 4 and 5', () => ([3, 4, 5].every((id) => acked.some((entry) => entry.partition === id)) ? true : undefined), 30_000);
      await waitFor('the group to cover all 6 partitions', () => (assigned(members).join() === '0,1,2,3,4,5' && members.every((member) => member.consumer.assignment().length === 3) ? true : undefined), 30_000);
      await producer.stop();
      producer = null;
      const consumed = () => new Set(members.flatMap((member) => member.records.map((record) => `${record.partition}:${record.offset}`)));
      const missing = await waitFor(
        'every acknowledged record to be consumed',
        () => {
          const seen = consumed();
          return acked.every((entry) => seen.has(`${entry.partition}:${entry.offset}`)) ? [] : undefined;
        },
        30_000,
      );
      expect(missing).toEqual([]);
      expect(new Set(members.flatMap((member) => member.records.map((record) => record.partition)))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    } finally {
      await producer?.stop();
      for (const member of members) await member.stop();
      await admin.close();
    }
  });

  it('shrinking or keeping the count is refused with INVALID_PARTITIONS, in one line naming the counts', async () => {
    const shrink = await cli(['topic', 'alter', 'growing', '--partitions', '4']);
    expect(shrink).toMatchObject({
      code: 1,
      stderr: "runnel: INVALID_PARTITIONS: cannot grow topic 'growing': the topic currently has 6 partition(s); 4 would not be an increase (partitions cannot be removed)\n",
    });
    expect((await cli(['topic', 'alter', 'growing', '--partitions', '6'])).stderr).toBe("runnel: INVALID_PARTITIONS: cannot grow topic 'growing': the topic already has 6 partition(s)\n");
    expect((await cli(['topic', 'alter', 'nope', '--partitions', '6'])).stderr).toBe("runnel: UNKNOWN_TOPIC_OR_PARTITION: cannot grow topic 'nope': no topic named 'nope'\n");
    // Nothing was removed, on any node.
    for (const node of fixture.cluster.nodes) {
      const own = new Admin({ bootstrap: [node.bootstrap] });
      try {
        expect((await own.describeTopics(['growing']))[0]!.partitions, `node ${node.nodeId}`).toHaveLength(6);
      } finally {
        await own.close();
      }
    }
  });

  it('SIGKILL of the active controller right after the alter is acknowledged: the new partitions exist with leaders after failover', async () => {
    const cluster = fixture.cluster;
    let admin = adminOf(cluster);
    await admin.createTopics([{ name: 'durable', partitions: 2, replicationFactor: 3 }]);
    const victim = (await admin.clusterStatus()).controller.id;
    expect(victim).toBeGreaterThan(0);
    await admin.close();
    // Ask a node that will survive, so that the acknowledgement is not lost with the victim.
    admin = adminOf(cluster, [victim]);
    try {
      await admin.createPartitions([{ topic: 'durable', count: 5 }]);
      await cluster.node(victim).kill('SIGKILL');
      const after = await waitFor(
        'a new active controller whose metadata has durable with 5 led partitions',
        async () => {
          const status = await admin.clusterStatus();
          const durable = status.topics.find((topic) => topic.name === 'durable');
          if (status.controller.id === -1 || status.controller.id === victim || durable === undefined) return undefined;
          return durable.partitions.every((partition) => partition.leader !== -1 && partition.leader !== victim) ? durable : undefined;
        },
        30_000,
      );
      expect(after.partitions.map((partition) => partition.partition)).toEqual([0, 1, 2, 3, 4]);
      // Writes to a new partition are acknowledged by the surviving replicas.
      const producer = new Producer({ bootstrap: bootstrap(), acks: 'all' });
      try {
        expect((await producer.send({ topic: 'durable', partition: 4, value: 'after failover' })).partition).toBe(4);
      } finally {
        await producer.close();
      }
      // The killed node comes back and learns the new partitions from the metadata log.
      await cluster.node(victim).launch();
      await waitFor(
        `node ${victim} to serve metadata with 5 partitions of durable`,
        async () => {
          const own = new Admin({ bootstrap: [cluster.node(victim).bootstrap], requestTimeoutMs: 2000 });
          try {
            const [described] = await own.describeTopics(['durable']);
            return described!.partitions.length === 5 ? true : undefined;
          } finally {
            await own.close();
          }
        },
        30_000,
      );
    } finally {
      await admin.close();
    }
  });
});
