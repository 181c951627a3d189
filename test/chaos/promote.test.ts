// Chaos, short version for CI: a node is SIGKILLed and restarted, and the moment it is back in the
// ISR of a partition it prefers it is made that partition's leader (preferred-leader election, or
// SIGKILL of the current leader), under steady acks=all load. A member just added to the ISR must
// already hold every acknowledged record (KIP-497's maximal ISR), or the promotion loses them.
import { describe, it } from 'vitest';
import { useCluster } from '../integration/harness.js';
import { CHAOS_NODE_CONFIG, runAndCheck } from './chaosRun.js';

describe('chaos: promote a rejoining follower', () => {
  const fixture = useCluster(3, CHAOS_NODE_CONFIG);

  it('making a follower leader as soon as it rejoins the ISR loses no acknowledged record', async () => {
    await runAndCheck(fixture.cluster, 'promote');
  }, 150_000);
});
