export { History, classifyError, errorNameOf, countHistory, type Attempt, type AttemptOutcome, type AttemptHandle, type SendEntry, type HistoryCounts } from './history.js';
export {
  checkHistory,
  summarizeCheck,
  type CheckInput,
  type CheckReport,
  type CheckCounts,
  type LogRecord,
  type PartitionRecords,
  type LostRecord,
  type InconsistentOffset,
  type Duplicate,
  type Gap,
  type Backwards,
  type Phantom,
} from './checker.js';
export { runChaos, readPartition, compareReplicas, replicaLogBytes, FAULT_KINDS, type ChaosCluster, type ChaosOptions, type ChaosReport, type FaultKind, type FaultEvent, type ReplicaComparison } from './runner.js';
