// What every chaos run must show, whatever the fault: shared by the CI chaos tests.
import { expect } from 'vitest';
import { runChaos, type ChaosReport, type LocalCluster } from '@runnel/testkit';

/** The timings the CI chaos clusters run with: fencing within seconds, so each run sees several faults. */
export const CHAOS_NODE_CONFIG = { 'broker.session.timeout.ms': '3000', 'broker.heartbeat.interval.ms': '500', 'replica.lag.time.max.ms': '4000' };

/** Runs one kind of fault for 25 s over 3,000 records, prints the report, and checks it. */
export async function runAndCheck(cluster: LocalCluster, fault: 'kill' | 'pause' | 'partition' | 'promote'): Promise<ChaosReport> {
  const report = await runChaos({
    cluster,
    topic: `chaos-${fault}`,
    records: 3000,
    durationMs: 25_000,
    faults: [fault],
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`${report.summary}\n`);
  if (!report.ok) {
    const { check } = report;
    process.stdout.write(`${JSON.stringify({ problems: report.problems, lost: check.lost.slice(0, 20), inconsistent: check.inconsistent.slice(0, 20), unexplained: check.duplicates.unexplained.slice(0, 20), backwards: check.backwards.slice(0, 20), replicas: report.replicas, events: report.faults.events })}\n`);
  }
  expect(report.faults[fault]).toBeGreaterThanOrEqual(2);
  if (fault === 'pause' || fault === 'partition') {
    // Each time, the node was fenced: out of every ISR and leadership before it came back.
    expect(report.faults.events.map((event) => event.replaced)).toEqual(report.faults.events.map(() => true));
  }
  expect(report.check.counts.acknowledged).toBeGreaterThan(1000);
  expect(report.check.counts.lost).toBe(0);
  expect(report.check.counts.inconsistent).toBe(0);
  expect(report.check.counts.unexplainedDuplicates).toBe(0);
  expect(report.check.counts.backwards).toBe(0);
  expect(report.isrHealMs).toBeGreaterThanOrEqual(0);
  expect(report.isrHealMs).toBeLessThanOrEqual(10_000);
  expect(report.replicasIdentical).toBe(true);
  expect(report.ok).toBe(true);
  return report;
}
