// The deterministic simulator, exported for packages that build on the Raft core (controller).
export {
  Simulation,
  SimulationFailure,
  runSimulation,
  runSeed,
  swarmOptions,
  formatMessage,
  type SimOptions,
  type SimResult,
  type SimWorkload,
  type LeaderHandle,
} from './simulation.js';
export { InvariantChecker, InvariantViolation, entryDigest, type LogView, type NodeObservation } from './invariants.js';
export { SimDisk, entryChecksum, type DiskRecord, type DurableView } from './disk.js';
export { Network, type NetworkFaults } from './network.js';
export { Xoshiro128, type Random } from '../random.js';
export type { Entry } from '../types.js';
