// The controller's state machine in @runnel/raft's deterministic simulator.
export {
  ControllerWorkload,
  ControllerSimViolation,
  canonicalImage,
  encodeBatch,
  decodeBatch,
  type ControllerWorkloadOptions,
  type ControllerWorkloadStats,
} from './controllerWorkload.js';
export { runControllerSeed, type ControllerSimResult } from './run.js';
