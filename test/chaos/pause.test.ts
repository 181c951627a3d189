// Chaos, short version for CI: the leader of a random partition SIGSTOPped past its session
// timeout (so it is fenced and replaced) and then SIGCONTed, again and again, while
// producers send uniquely numbered values with acks=all (retrying on their own) and a consumer
// reads along. The checker proves no acknowledged record was lost, no offset changed its record,
// no duplicate without a retried unknown outcome, and consumers never went back; every replica
// ends byte-identical and the full ISR is back within 10 s of the last restart.
import { describe, it } from 'vitest';
import { useCluster } from '../integration/harness.js';
import { CHAOS_NODE_CONFIG, runAndCheck } from './chaosRun.js';

describe('chaos: pause', () => {
  const fixture = useCluster(3, CHAOS_NODE_CONFIG);

  it('SIGSTOP of a partition leader past the session timeout: it acknowledges nothing that is later lost', async () => {
    await runAndCheck(fixture.cluster, 'pause');
  }, 120_000);
});
