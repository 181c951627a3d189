// A 3-node cluster (every node a broker and a controller voter) losing nodes: SIGKILL of the active
// controller, SIGKILL of a broker, SIGSTOP of a broker past its session timeout. Metadata survives,
// partitions get new leaders from their ISR within the session timeout, a paused leader steps down
// instead of acting on stale leadership, and leadership is balanced again once everyone is back.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin, type ClusterStatus } from '@runnel/client';
import { errorCode } from '@runnel/common';
import type { LocalCluster } from '@runnel/testkit';
import { produceOnce, useCluster, waitFor } from './harness.js';

const SESSION_TIMEOUT_MS = 3000;
const CHECK_INTERVAL_S = 3;

/** Admin over the nodes still running (a dead bootstrap address only costs a retry, but adds up). */
function adminOf(cluster: LocalCluster, except: number[] = []): Admin {
  const bootstrap = cluster.nodes.filter((node) => !except.includes(node.nodeId)).map((node) => node.bootstrap);
  return new Admin({ bootstrap, requestTimeoutMs: 2000 });
}

function leaderCounts(status: ClusterStatus, topic: string): Map<number, number> {
  const counts = new Map<number, number>(status.nodes.map((node) => [node.id, 0]));
  for (const partition of status.topics.find((candidate) => candidate.name === topic)?.partitions ?? []) {
    counts.set(partition.leader, (counts.get(partition.leader) ?? 0) + 1);
  }
  return counts;
}

function balanced(status: ClusterStatus, topic: string, partitions: number): boolean {
  const counts = leaderCounts(status, topic);
  const share = partitions / status.nodes.length;
  return status.nodes.every((node) => !node.fenced && Math.abs((counts.get(node.id) ?? 0) - share) <= 1) && !counts.has(-1);
}


describe('a 3-node cluster losing nodes', () => {
  const fixture = useCluster(3, { 'leader.imbalance.check.interval.seconds': String(CHECK_INTERVAL_S), 'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS) });
  const topic = 'orders';

  it('any node takes admin requests: 12 partitions with RF 3 get 4 leaders on each node', async () => {
    for (const node of fixture.cluster.nodes) {
      // Each node forwards to the active controller, wherever it is.
      const admin = new Admin({ bootstrap: node.bootstrap });
      try {
        await admin.createTopics([{ name: `via-node-${node.nodeId}`, partitions: 1, replicationFactor: 3 }]);
      } finally {
        await admin.close();
      }
    }
    const admin = adminOf(fixture.cluster);
    try {
      await admin.createTopics([{ name: topic, partitions: 12, replicationFactor: 3 }]);
      const status = await admin.clusterStatus();
      expect(status.nodes.map((node) => node.fenced)).toEqual([false, false, false]);
      expect([...leaderCounts(status, topic).values()]).toEqual([4, 4, 4]);
      for (const partition of status.topics.find((candidate) => candidate.name === topic)!.partitions) {
        expect([...partition.replicas].sort()).toEqual([1, 2, 3]);
        expect(partition.isr).toHaveLength(3);
      }
      expect(status.topics.map((candidate) => candidate.name)).toEqual(['orders', 'via-node-1', 'via-node-2', 'via-node-3']);
      await expect(admin.createTopics([{ name: 'too-many', partitions: 1, replicationFactor: 4 }])).rejects.toThrow(/INVALID_REPLICATION_FACTOR/);
    } finally {
      await admin.close();
    }
  });

  it('SIGSTOP of a leader past the session timeout: it is fenced, and after SIGCONT it refuses writes instead of leading', async () => {
    const cluster = fixture.cluster;
    let admin = adminOf(cluster);
    const before = await admin.clusterStatus();
    await admin.close();
    const partitions = before.topics.find((candidate) => candidate.name === topic)!.partitions;
    const victim = [1, 2, 3].find((id) => id !== before.controller.id && partitions.some((candidate) => candidate.leader === id))!;
    expect(victim).toBeDefined();
    const partition = partitions.find((candidate) => candidate.leader === victim)!;
    const node = cluster.node(victim);
    // It leads the partition and takes writes before the pause.
    expect((await produceOnce(node.bootstrap, topic, partition.partition)).errorCode).toBe(0);
    admin = adminOf(cluster, [victim]);
    try {
      node.pause();
      await waitFor('the paused broker to be fenced and lose its leadership', async () => {
        const status = await admin.clusterStatus();
        const fenced = status.nodes.find((candidate) => candidate.id === victim)!.fenced;
        const current = status.topics.find((candidate) => candidate.name === topic)!.partitions[partition.partition]!;
        return fenced && current.leader !== victim && current.leader !== -1 ? true : undefined;
      }, SESSION_TIMEOUT_MS + 10_000);
      node.resume();
      // The first request after SIGCONT: its image may still name it leader, but it must not act on it.
      const answer = await produceOnce(node.bootstrap, topic, partition.partition);
      expect(answer.errorCode, answer.errorMessage).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
      await waitFor('the resumed broker to be unfenced', async () => {
        const status = await admin.clusterStatus();
        return status.nodes.find((candidate) => candidate.id === victim)!.fenced ? undefined : true;
      }, 15_000);
      // Caught up, it knows it follows now.
      const later = await produceOnce(node.bootstrap, topic, partition.partition);
      expect(later.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
      expect(later.errorMessage).toMatch(/not the leader/);
    } finally {
      node.resume();
      await admin.close();
    }
  });

  it('SIGKILL of a broker: new leaders within the session timeout + 2 s; after a restart it rejoins and leads its share again', async () => {
    const cluster = fixture.cluster;
    let admin = adminOf(cluster);
    const before = await admin.clusterStatus();
    await admin.close();
    // A broker that leads partitions and is not the active controller, so that only broker fencing is measured.
    const partitions = before.topics.find((candidate) => candidate.name === topic)!.partitions;
    const victim = [1, 2, 3].find((id) => id !== before.controller.id && partitions.some((partition) => partition.leader === id))!;
    const led = partitions.filter((partition) => partition.leader === victim);
    expect(led.length).toBeGreaterThan(0);
    admin = adminOf(cluster, [victim]);
    try {
      const killedAt = Date.now();
      await cluster.node(victim).kill('SIGKILL');
      const after = await waitFor(
        `new leaders for the ${led.length} partitions node ${victim} led`,
        async () => {
          const status = await admin.clusterStatus();
          const partitions = status.topics.find((candidate) => candidate.name === topic)!.partitions;
          return partitions.every((partition) => partition.leader !== victim && partition.leader !== -1) ? status : undefined;
        },
        SESSION_TIMEOUT_MS + 10_000,
        50,
      );
      const movedMs = Date.now() - killedAt;
      process.stdout.write(`partitions of node ${victim} re-led ${movedMs} ms after SIGKILL (session timeout ${SESSION_TIMEOUT_MS} ms)\n`);
      expect(movedMs).toBeLessThan(SESSION_TIMEOUT_MS + 2000);
      expect(after.nodes.find((node) => node.id === victim)!.fenced).toBe(true);
      for (const partition of after.topics.find((candidate) => candidate.name === topic)!.partitions) {
        expect(partition.isr).not.toContain(victim);
        expect(partition.isr).toContain(partition.leader);
        const previous = before.topics.find((candidate) => candidate.name === topic)!.partitions[partition.partition]!;
        if (previous.leader === victim) expect(partition.leaderEpoch).toBeGreaterThan(previous.leaderEpoch);
      }
      // RF 3 needs three live brokers.
      await expect(admin.createTopics([{ name: 'needs-three', partitions: 1, replicationFactor: 3 }])).rejects.toThrow(/INVALID_REPLICATION_FACTOR/);

      const oldIncarnation = before.nodes.find((node) => node.id === victim)!.incarnationId;
      await cluster.node(victim).launch();
      const rejoined = await waitFor('the broker to rejoin', async () => {
        const status = await admin.clusterStatus();
        const node = status.nodes.find((candidate) => candidate.id === victim)!;
        return !node.fenced ? status : undefined;
      }, 15_000);
      expect(rejoined.nodes.find((node) => node.id === victim)!.incarnationId).not.toBe(oldIncarnation);
      // Back in the ISR of its partitions once its fetches catch up, then preferred leader again.
      const rejoinedAt = Date.now();
      await waitFor('leadership balanced again', async () => (balanced(await admin.clusterStatus(), topic, 12) ? true : undefined), CHECK_INTERVAL_S * 1000 + 3000);
      process.stdout.write(`leadership balanced ${Date.now() - rejoinedAt} ms after node ${victim} rejoined (check interval ${CHECK_INTERVAL_S} s)\n`);
    } finally {
      await admin.close();
    }
  });

  it('SIGKILL of the active controller: a new one within 3 s, no metadata lost, the old one rejoins', async () => {
    const cluster = fixture.cluster;
    let admin = adminOf(cluster);
    const before = await admin.clusterStatus();
    await admin.close();
    const victim = before.controller.id;
    expect(victim).toBeGreaterThan(0);
    admin = adminOf(cluster, [victim]);
    try {
      const killedAt = Date.now();
      await cluster.node(victim).kill('SIGKILL');
      const after = await waitFor(
        'a new active controller',
        async () => {
          const status = await admin.clusterStatus();
          return status.controller.id !== -1 && status.controller.id !== victim ? status : undefined;
        },
        10_000,
        50,
      );
      const electedMs = Date.now() - killedAt;
      process.stdout.write(`new active controller ${after.controller.id} (term ${after.controller.term}) ${electedMs} ms after SIGKILL of ${victim}\n`);
      expect(electedMs).toBeLessThan(3000);
      expect(after.controller.term).toBeGreaterThan(before.controller.term);
      // Every topic and partition assignment is still there, and the new controller takes writes.
      expect(after.topics.map((candidate) => [candidate.name, candidate.partitions.length])).toEqual(before.topics.map((candidate) => [candidate.name, candidate.partitions.length]));
      await admin.createTopics([{ name: 'after-failover', partitions: 2, replicationFactor: 2 }]);

      await cluster.node(victim).launch();
      const back = await waitFor('the old controller to rejoin as an unfenced broker', async () => {
        const status = await admin.clusterStatus();
        return status.nodes.find((node) => node.id === victim)?.fenced === false ? status : undefined;
      }, 15_000);
      expect(back.topics.some((candidate) => candidate.name === 'after-failover')).toBe(true);
      await waitFor('leadership balanced again', async () => (balanced(await admin.clusterStatus(), topic, 12) ? true : undefined), (CHECK_INTERVAL_S + SESSION_TIMEOUT_MS / 1000 + 10) * 1000);
    } finally {
      await admin.close();
    }
  });

  it('DeleteTopics removes the data on every replica, also on a node that was down during the delete', async () => {
    const cluster = fixture.cluster;
    let admin = adminOf(cluster);
    await admin.createTopics([{ name: 'doomed', partitions: 2, replicationFactor: 3 }]);
    const logsOf = (id: number) => join(cluster.node(id).dataDir, 'logs');
    for (const id of [1, 2, 3]) {
      await waitFor(`doomed-0 on node ${id}`, async () => (existsSync(join(logsOf(id), 'doomed-0')) ? true : undefined), 5000);
    }
    const status = await admin.clusterStatus();
    await admin.close();
    const down = [1, 2, 3].find((id) => id !== status.controller.id)!;
    await cluster.node(down).kill('SIGKILL');
    admin = adminOf(cluster, [down]);
    try {
      await admin.deleteTopics(['doomed']);
      for (const id of [1, 2, 3].filter((candidate) => candidate !== down)) {
        await waitFor(`doomed gone from node ${id}`, async () => (readdirSync(logsOf(id)).some((name) => name.startsWith('doomed-')) ? undefined : true), 5000);
      }
      expect(existsSync(join(logsOf(down), 'doomed-0'))).toBe(true);
      await cluster.node(down).launch();
      // The restarted node learns from the metadata log that the topic is gone and deletes it too.
      await waitFor(`doomed gone from node ${down} after its restart`, async () => (readdirSync(logsOf(down)).some((name) => /^doomed-\d+$/.test(name)) ? undefined : true), 5000);
    } finally {
      await admin.close();
    }
  });
});
