// Chaos, short version for CI: a random node SIGKILLed every few seconds and restarted, while
// producers send uniquely numbered values with acks=all (retrying on their own) and a consumer
// reads along. The checker proves no acknowledged record was lost, no offset changed its record,
// no duplicate without a retried unknown outcome, and consumers never went back; every replica
// ends byte-identical and the full ISR is back within 10 s of the last restart.
import { describe, it } from 'vitest';
import { useCluster } from '../integration/harness.js';
import { CHAOS_NODE_CONFIG, runAndCheck } from './chaosRun.js';

describe('chaos: kill', () => {
  const fixture = useCluster(3, CHAOS_NODE_CONFIG);

  it('SIGKILL of a random node every few seconds loses no acknowledged record', async () => {
    await runAndCheck(fixture.cluster, 'kill');
  }, 120_000);
});
