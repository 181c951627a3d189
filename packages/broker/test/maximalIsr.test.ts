// The high watermark counts a pending ISR expansion (KIP-497's maximal ISR). The sequence the
// review found: ISR [1,2], replicas [3,1,2]; follower 3 reaches the high watermark and the leader
// asks to add it; acks=all records are appended and follower 2 fetches them; the controller then
// commits [1,2,3] while 3 still lacks them. Had the watermark passed them, a leader change to 3
// (preferred-leader election, or 1 failing) would lose acknowledged records.
import { afterEach, describe, expect, it } from 'vitest';
import { batchOf, followerFetch, leaderFixture, settle, type LeaderFixture } from './leaderHarness.js';

describe('the high watermark over the maximal ISR', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('does not pass the log end of a member whose addition to the ISR is in flight', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [3, 1, 2], isr: [1, 2] } });
    const { replicas, partition, controller } = fixture;

    // 3 fetches at the high watermark (0): the leader asks the controller to add it.
    await followerFetch(replicas, partition, 3, 0);
    expect(controller.calls.map((call) => call.newIsr)).toEqual([[1, 2, 3]]);
    expect(partition.maximalIsr).toEqual([1, 2, 3]);

    let acknowledged = false;
    const produce = replicas.produce(-1, [{ topic: 't', partition: 0, records: batchOf(10) }], 10_000).then((results) => {
      acknowledged = true;
      return results;
    });
    await settle();
    expect(partition.log.logEndOffset).toBe(10);

    // 2 fetches the ten records and reports them: in the committed ISR [1,2] they are everywhere.
    const fetched = await followerFetch(replicas, partition, 2, 0);
    expect(fetched.records.length).toBeGreaterThan(0);
    await followerFetch(replicas, partition, 2, 10);
    await settle();
    expect(partition.highWatermark).toBe(0);
    expect(acknowledged).toBe(false);

    // The controller commits [1,2,3]; 3 is still at 0, so nothing is acknowledged yet.
    controller.calls[0]!.resolve({ partitionEpoch: 2 });
    fixture.applyRole({ leader: 1, leaderEpoch: 1, partitionEpoch: 2, replicas: [3, 1, 2], isr: [1, 2, 3] });
    await settle();
    expect(partition.pendingIsrChange).toBeNull();
    expect(partition.highWatermark).toBe(0);
    expect(acknowledged).toBe(false);

    // 3 catches up: now every ISR member has the records.
    await followerFetch(replicas, partition, 3, 10);
    const [result] = await produce;
    expect(result!.errorCode).toBe(0);
    expect(partition.highWatermark).toBe(10);
  });

  it('keeps counting the member when the controller answer is lost, until the metadata shows the outcome', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [3, 1, 2], isr: [1, 2] } });
    const { replicas, partition, controller } = fixture;
    await followerFetch(replicas, partition, 3, 0);
    controller.calls[0]!.reject(new Error('deadline exceeded'));
    await settle();
    // The controller may or may not have committed [1,2,3]: 3 still counts.
    expect(partition.maximalIsr).toEqual([1, 2, 3]);
    await replicas.produce(1, [{ topic: 't', partition: 0, records: batchOf(5) }]);
    await followerFetch(replicas, partition, 2, 5);
    expect(partition.highWatermark).toBe(0);
    // The metadata shows the controller did not add it (a newer partition epoch without 3).
    fixture.applyRole({ leader: 1, leaderEpoch: 1, partitionEpoch: 2, replicas: [3, 1, 2], isr: [1, 2] });
    expect(partition.maximalIsr).toEqual([1, 2]);
    await followerFetch(replicas, partition, 2, 5);
    expect(partition.highWatermark).toBe(5);
  });

  it('asks again after an unknown outcome, and drops the pending change on a refusal that applied nothing', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [3, 1, 2], isr: [1, 2] } });
    const { replicas, partition, controller } = fixture;
    await followerFetch(replicas, partition, 3, 0);
    controller.calls[0]!.reject(new Error('no controller answered'));
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(controller.calls.length).toBe(2);
    expect(controller.calls[1]!.newIsr).toEqual([1, 2, 3]);
    controller.refuseLatest('INELIGIBLE_REPLICA');
    await settle();
    expect(partition.pendingIsrChange).toBeNull();
    expect(partition.maximalIsr).toEqual([1, 2]);
    // A refusal backs off: fetches right after it do not ask again at once.
    for (let k = 0; k < 20; k++) await followerFetch(replicas, partition, 3, 0);
    expect(controller.calls.length).toBe(2);
  });

  it('does not ask to add a replica its metadata shows fenced', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [3, 1, 2], isr: [1, 2] } });
    const { replicas, partition, controller } = fixture;
    controller.ineligible.set(3, 'broker 3 is fenced');
    for (let k = 0; k < 20; k++) await followerFetch(replicas, partition, 3, 0);
    expect(controller.calls.length).toBe(0);
    controller.ineligible.delete(3);
    await followerFetch(replicas, partition, 3, 0);
    expect(controller.calls.length).toBe(1);
  });

  it('keeps the committed (larger) ISR while a shrink is in flight', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2, 3], isr: [1, 2, 3] }, replicaLagTimeMaxMs: 50 });
    const { replicas, partition, controller } = fixture;
    await followerFetch(replicas, partition, 2, 0);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await replicas.produce(1, [{ topic: 't', partition: 0, records: batchOf(4) }]);
    await followerFetch(replicas, partition, 2, 4);
    replicas.shrinkIsrs();
    expect(controller.calls.map((call) => call.newIsr)).toEqual([[1, 2]]);
    // 3 has not fetched: until the shrink is committed, 3 still holds the watermark.
    expect(partition.maximalIsr).toEqual([1, 2, 3]);
    expect(partition.highWatermark).toBe(0);
    fixture.applyRole({ leader: 1, leaderEpoch: 1, partitionEpoch: 2, replicas: [1, 2, 3], isr: [1, 2] });
    await followerFetch(replicas, partition, 2, 4);
    expect(partition.highWatermark).toBe(4);
  });
});
