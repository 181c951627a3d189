// Dynamic broker configs in the controller (KIP-226 through IncrementalAlterConfigs): which keys and
// values are accepted, per-resource all-or-nothing, validateOnly, no-op changes, and that what is
// written survives a replay of the log and a snapshot.
import { describe, expect, it } from 'vitest';
import { MetadataImage, type ConfigResourceChange, type IncrementalAlterConfigsRequest } from '../src/index.js';
import { decodeImageSnapshot, encodeImageSnapshot } from '../src/quorum/index.js';
import { Cluster } from './cluster.js';

const INVALID_CONFIG = 40;
const INVALID_REQUEST = 42;
const LEADER_RATE = 'leader.replication.throttled.rate';
const FOLLOWER_RATE = 'follower.replication.throttled.rate';

function cluster(): Cluster {
  const result = new Cluster(3);
  result.start([1, 2, 3]);
  return result;
}

function alter(target: Cluster, resources: ConfigResourceChange[], options: Omit<IncrementalAlterConfigsRequest, 'resources'> = {}) {
  const before = target.log.length;
  const response = target.commit(target.logic.incrementalAlterConfigs(target.image, { resources, ...options }));
  return { results: response.resources, records: target.log.slice(before) };
}

const set = (key: string, value: string) => ({ key, op: 'set' as const, value });
const remove = (key: string) => ({ key, op: 'delete' as const });

describe('incrementalAlterConfigs', () => {
  it('writes cluster-level and broker-level throttled rates as Config records the image shows', () => {
    const target = cluster();
    const { results, records } = alter(target, [
      { type: 'cluster', name: '', ops: [set(LEADER_RATE, '1048576'), set(FOLLOWER_RATE, ' 2000000 ')] },
      { type: 'broker', name: '2', ops: [set(LEADER_RATE, '500')] },
    ]);
    expect(results).toEqual([
      { type: 'cluster', name: '', errorCode: 0, errorMessage: '' },
      { type: 'broker', name: '2', errorCode: 0, errorMessage: '' },
    ]);
    expect(records).toEqual([
      { type: 'Config', resourceType: 'cluster', resourceName: '', name: LEADER_RATE, value: '1048576' },
      // Stored canonical: digits only.
      { type: 'Config', resourceType: 'cluster', resourceName: '', name: FOLLOWER_RATE, value: '2000000' },
      { type: 'Config', resourceType: 'broker', resourceName: '2', name: LEADER_RATE, value: '500' },
    ]);
    expect(Object.fromEntries(target.image.config('cluster', ''))).toEqual({ [LEADER_RATE]: '1048576', [FOLLOWER_RATE]: '2000000' });
    expect(Object.fromEntries(target.image.config('broker', '2'))).toEqual({ [LEADER_RATE]: '500' });

    // A replay of the log and a snapshot carry the same values.
    const replayed = MetadataImage.empty().applyAll(target.log, 0);
    expect(replayed.config('cluster', '')).toEqual(target.image.config('cluster', ''));
    const restored = decodeImageSnapshot(encodeImageSnapshot(target.image));
    expect(Object.fromEntries(restored.config('broker', '2'))).toEqual({ [LEADER_RATE]: '500' });
  });

  it('deletes a key back to the next level down, and writes nothing for a change that changes nothing', () => {
    const target = cluster();
    alter(target, [{ type: 'cluster', name: '', ops: [set(LEADER_RATE, '100'), set(FOLLOWER_RATE, '200')] }]);
    const noop = alter(target, [{ type: 'cluster', name: '', ops: [set(LEADER_RATE, '100'), remove(FOLLOWER_RATE)] }]);
    // The follower delete is a real change; the leader set to its current value is not.
    expect(noop.records).toEqual([{ type: 'Config', resourceType: 'cluster', resourceName: '', name: FOLLOWER_RATE, value: null }]);
    expect(Object.fromEntries(target.image.config('cluster', ''))).toEqual({ [LEADER_RATE]: '100' });
    const again = alter(target, [{ type: 'cluster', name: '', ops: [remove(FOLLOWER_RATE)] }]);
    expect(again.results[0]!.errorCode).toBe(0);
    expect(again.records).toEqual([]);
  });

  it('refuses static and unknown keys with INVALID_CONFIG naming the key, and a static one says it needs a restart', () => {
    const target = cluster();
    const { results, records } = alter(target, [
      { type: 'cluster', name: '', ops: [set(LEADER_RATE, '100'), set('log.retention.hours', '1')] },
      { type: 'broker', name: '1', ops: [set('leader.replication.throttle.rate', '100')] },
    ]);
    expect(results[0]).toMatchObject({ errorCode: INVALID_CONFIG, errorMessage: expect.stringMatching(/'log\.retention\.hours' is a static broker config.*restart/) });
    expect(results[1]).toMatchObject({ errorCode: INVALID_CONFIG, errorMessage: expect.stringMatching(/unknown broker config 'leader\.replication\.throttle\.rate' \(did you mean 'leader\.replication\.throttled\.rate'\?\)/) });
    // All or nothing per resource: the valid leader rate beside the static key is not written.
    expect(records).toEqual([]);
  });

  it('accepts a non-negative long and nothing else', () => {
    const target = cluster();
    for (const bad of ['-1', '1.5', '1e6', 'fast', '', '9223372036854775808', '0x10']) {
      const { results } = alter(target, [{ type: 'cluster', name: '', ops: [set(LEADER_RATE, bad)] }]);
      expect(results[0], bad).toMatchObject({ errorCode: INVALID_CONFIG, errorMessage: expect.stringContaining(`invalid value '${bad}' for '${LEADER_RATE}'`) });
    }
    const { results } = alter(target, [{ type: 'cluster', name: '', ops: [set(LEADER_RATE, '9223372036854775807'), set(FOLLOWER_RATE, '0')] }]);
    expect(results[0]!.errorCode).toBe(0);
    expect(target.image.config('cluster', '').get(LEADER_RATE)).toBe('9223372036854775807');
  });

  it('refuses an unregistered or malformed broker id, a named cluster resource, repeats and a set without a value with INVALID_REQUEST; the other resources go ahead', () => {
    const target = cluster();
    const { results, records } = alter(target, [
      { type: 'broker', name: '9', ops: [set(LEADER_RATE, '1')] },
      { type: 'broker', name: '01', ops: [set(LEADER_RATE, '1')] },
      { type: 'broker', name: '', ops: [set(LEADER_RATE, '1')] },
      { type: 'cluster', name: 'all', ops: [set(LEADER_RATE, '1')] },
      { type: 'broker', name: '1', ops: [set(LEADER_RATE, '1'), set(LEADER_RATE, '2')] },
      { type: 'broker', name: '2', ops: [{ key: LEADER_RATE, op: 'set', value: null }] },
      { type: 'broker', name: '3', ops: [set(FOLLOWER_RATE, '7')] },
    ]);
    expect(results.map((result) => result.errorCode)).toEqual([INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST, 0]);
    expect(results[0]!.errorMessage).toBe('broker 9 is not registered in the cluster');
    expect(results[4]!.errorMessage).toContain(`config '${LEADER_RATE}' appears more than once`);
    expect(records).toEqual([{ type: 'Config', resourceType: 'broker', resourceName: '3', name: FOLLOWER_RATE, value: '7' }]);

    const repeated = alter(target, [
      { type: 'cluster', name: '', ops: [set(LEADER_RATE, '1')] },
      { type: 'cluster', name: '', ops: [set(FOLLOWER_RATE, '1')] },
    ]);
    expect(repeated.results.map((result) => result.errorMessage)).toEqual(['the cluster default appears more than once in the request', 'the cluster default appears more than once in the request']);
    expect(repeated.records).toEqual([]);
  });

  it('validateOnly answers as if applied and writes nothing', () => {
    const target = cluster();
    const { results, records } = alter(target, [{ type: 'cluster', name: '', ops: [set(LEADER_RATE, '5')] }, { type: 'broker', name: '1', ops: [set('num.partitions', '3')] }], { validateOnly: true });
    expect(results.map((result) => result.errorCode)).toEqual([0, INVALID_CONFIG]);
    expect(records).toEqual([]);
    expect(target.image.config('cluster', '').size).toBe(0);
  });
});
