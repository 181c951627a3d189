import { runSimulation, swarmOptions, type SimResult } from '@runnel/raft/sim';
import { ControllerWorkload, type ControllerWorkloadOptions, type ControllerWorkloadStats } from './controllerWorkload.js';

export interface ControllerSimResult extends SimResult {
  readonly controller: ControllerWorkloadStats;
}

/**
 * One seed: the simulator's swarm options for the seed (faults, crashes, partitions, compaction,
 * membership changes) with the controller workload. Throws SimulationFailure naming the seed.
 */
export function runControllerSeed(seed: number, options: ControllerWorkloadOptions = {}, trace?: (line: string) => void): ControllerSimResult {
  const workload = new ControllerWorkload(options);
  const result = runSimulation({ ...swarmOptions(seed), workload }, trace);
  return { ...result, controller: { ...workload.stats } };
}
